// Package epmd implements the Erlang Port Mapper Daemon protocol (OTP's
// erl_dist_protocol documentation, "EPMD Protocol"): a codec, a Server and a
// Client.
//
// # Codec
//
// Requests travel framed by a 2-byte big-endian length; replies are not
// framed. The codec covers ALIVE2_REQ (register), ALIVE2_RESP and
// ALIVE2_X_RESP (the answer, with a 16- or 32-bit creation),
// PORT_PLEASE2_REQ and PORT2_RESP (look a node up by name) and NAMES_REQ with
// its text reply. Decoding is strict: every length must match the bytes
// present, names are 1 to 255 UTF-8 characters without NUL (OTP's epmd's
// limits), and every problem is an error wrapping ErrMalformed, never a panic.
//
// # Server
//
// Server has OTP's epmd's semantics: a registration lives as long as the TCP
// connection that made it; a second registration of a live name is refused;
// a name registered again gets a different creation (unlike ergo's embedded
// EPMD, which always answers 1); only local peers may register. It serves
// every BEAM node in the same pod as well as our own, on IPv4 and IPv6. Each
// request must arrive within Config.ReadTimeout, and Config.MaxConns bounds
// the connections served at once. An Observer hears the kind and result of
// every request, both small fixed sets usable as metric labels.
//
// # Client
//
// Client registers (keeping the connection, and so the registration, open
// until Registration.Close), looks ports up and lists names, each bounded by
// a context and Client.Timeout.
//
// # Imports
//
// epmd is a leaf: it imports only the standard library and gonode's
// stdlib-only internal/ratelog, which rate-limits the log lines that
// connections trigger (per source address; the Observer still hears every
// request). node builds its ergo Registrar on it; cmd/gonode and metrics use
// its Server and Observer. Reusable test helpers live in epmd/epmdtest.
package epmd
