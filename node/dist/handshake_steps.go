package dist

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/ergo-services/ergo/lib"
)

// hsRun is one handshake under way: the connection, who we are, and what
// the steps learnt of the peer. Each step of Start (the initiator's side)
// and Accept (the acceptor's) is one of its methods, in the order of the
// protocol; a step returns the error that ends the handshake.
type hsRun struct {
	h        *Handshake
	c        *hsConn
	cookie   string
	self     string
	creation uint32

	peer         string // once the peer has named itself
	theirs       Flags  // the peer's flags, HANDSHAKE_23's mandatory ones expanded
	peerCreation uint32
	ours         uint32    // the challenge we sent
	tls          *tls.Conn // over TLS (secure), the connection the handshake runs on
}

// newRun starts a handshake on rw, bounded by HandshakeTimeout as a whole.
func (h *Handshake) newRun(rw lib.NetReadWriter, cookie string) (*hsRun, error) {
	self, creation, err := h.identity()
	if err != nil {
		return nil, err
	}
	c := newHSConn(rw, h.cfg.HandshakeTimeout)
	return &hsRun{h: h, c: c, cookie: cookie, self: self, creation: creation}, nil
}

// --- the initiator's steps ---

// initiate runs the initiator's side, from send_name to recv_challenge_ack.
func (r *hsRun) initiate() error {
	if err := r.c.write("name", hsAppendName(nil, r.h.flags, r.creation, r.self)); err != nil {
		return err
	}
	if err := r.recvStatus(); err != nil {
		return err
	}
	challenge, err := r.recvChallenge()
	if err != nil {
		return err
	}
	// From here on an incoming attempt from this peer is a simultaneous connect.
	defer r.h.Dialing(r.peer)()
	if missing := r.theirs.Missing(r.h.cfg.Required); missing != 0 {
		return hsMissingFlagsError(r.peer, missing)
	}
	if err := r.sendChallengeReply(challenge); err != nil {
		return err
	}
	return r.recvChallengeAck()
}

// recvStatus reads the acceptor's answer to our name.
func (r *hsRun) recvStatus() error {
	b, err := r.c.read("status")
	if err != nil {
		return err
	}
	status, err := hsDecodeStatus(b)
	if err != nil {
		return err
	}
	switch status {
	case hsStatusOK, hsStatusOKSimultaneous:
		return nil
	case hsStatusNOK:
		return fmt.Errorf("%w: it answered nok (its own connection attempt to us is under way and wins)", ErrPeerRefused)
	case hsStatusNotAllowed:
		return fmt.Errorf("%w: the peer answered not_allowed", ErrNotAllowed)
	case hsStatusAlive:
		return r.answerAlive()
	case hsStatusNamed:
		return hsMalformed("status named: answers a dynamic name request we did not make")
	default:
		return hsMalformed("unexpected status %q at the status step", status)
	}
}

// answerAlive answers the acceptor's question whether we are alive: it holds
// a connection to us.
func (r *hsRun) answerAlive() error {
	// If it is the one that won a simultaneous connect against this attempt,
	// keep it (false), as OTP's initiator answers for an attempt that is no
	// longer pending.
	if p := r.h.supersededAndConnected(); p != "" {
		_ = r.c.write("alive answer", hsAppendStatus(nil, hsStatusFalse))
		r.peer = p
		return fmt.Errorf("%w: it asked whether we are alive, and our attempt already gave way to its connection from %s", ErrPeerRefused, p)
	}
	// Otherwise it still holds a connection from us that we no longer have
	// (ergo dials only nodes it is not connected to): drop it.
	return r.c.write("alive answer", hsAppendStatus(nil, hsStatusTrue))
}

// recvChallenge reads the acceptor's challenge, which names it, and returns
// the challenge.
func (r *hsRun) recvChallenge() (uint32, error) {
	b, err := r.c.read("challenge")
	if err != nil {
		return 0, err
	}
	ch, err := hsDecodeChallenge(b)
	if err != nil {
		return 0, err
	}
	if err := hsValidNodeName(ch.Name); err != nil {
		return 0, err
	}
	r.peer, r.theirs, r.peerCreation = ch.Name, hsExpandMandatory25(ch.Flags), ch.Creation
	if r.peer == r.self {
		return 0, fmt.Errorf("%w: the peer uses our own name %s", ErrNotAllowed, r.peer)
	}
	return ch.Challenge, r.givenWay()
}

// givenWay returns ErrPeerRefused when an incoming attempt from the peer
// won over ours (only a peer that is not OTP lets that happen after its
// challenge).
func (r *hsRun) givenWay() error {
	if r.h.isSuperseded(r.peer) {
		return fmt.Errorf("%w: our attempt gave way to the simultaneous incoming connection from %s", ErrPeerRefused, r.peer)
	}
	return nil
}

// sendChallengeReply proves our cookie against the acceptor's challenge and
// sends ours, unless an incoming attempt from the peer won meanwhile.
func (r *hsRun) sendChallengeReply(theirs uint32) error {
	if err := r.givenWay(); err != nil {
		return err
	}
	r.ours = hsRandomChallenge()
	return r.c.write("challenge reply", hsAppendChallengeReply(nil, r.ours, hsDigest(theirs, r.cookie)))
}

// recvChallengeAck reads the acceptor's proof of the cookie.
func (r *hsRun) recvChallengeAck() error {
	b, err := r.c.read("challenge ack")
	if errors.Is(err, ErrConnectionClosed) {
		// An OTP acceptor closes the connection without a word when our
		// digest does not match its cookie.
		return fmt.Errorf("%w with node %s: it closed the connection on our challenge reply, as a node with another cookie does: %w", ErrWrongCookie, r.peer, err)
	}
	if err != nil {
		return err
	}
	digest, err := hsDecodeChallengeAck(b)
	if err != nil {
		return err
	}
	if !hsSameDigest(digest, hsDigest(r.ours, r.cookie)) {
		return fmt.Errorf("%w with node %s: its challenge ack does not match our cookie", ErrWrongCookie, r.peer)
	}
	return nil
}

// --- the acceptor's steps ---

// acceptSteps runs the acceptor's side: each message must come within
// StepTimeout of the previous one.
func (r *hsRun) acceptSteps() error {
	r.c.step = r.h.cfg.StepTimeout
	name, err := r.recvName()
	if err != nil {
		return err
	}
	if !r.h.enterAccepting(r.peer) {
		// An OTP node has one attempt to a peer under way at a time; a
		// second one meanwhile is a stranger using its name or a retry of
		// an attempt we are still serving: the first one decides.
		return fmt.Errorf("%w: a handshake from %s is already under way", ErrPeerRefused, r.peer)
	}
	defer r.h.leaveAccepting(r.peer)
	if err := r.checkNameFlags(name.Old); err != nil {
		return err
	}
	replaceOld, err := r.sendStatus()
	if err != nil {
		return err
	}
	r.ours = hsRandomChallenge()
	if err := r.c.write("challenge", hsAppendChallenge(nil, r.h.flags, r.ours, r.creation, r.self)); err != nil {
		return err
	}
	if name.Old {
		if err := r.recvComplement(); err != nil {
			return err
		}
	}
	theirChallenge, err := r.recvChallengeReply()
	if err != nil {
		return err
	}
	// Only a peer that proved the cookie may replace the old connection, as
	// OTP does: close it and wait until it is gone before acknowledging.
	if replaceOld {
		if err := r.disconnectOld(); err != nil {
			return err
		}
	}
	return r.c.write("challenge ack", hsAppendChallengeAck(nil, hsDigest(theirChallenge, r.cookie)))
}

// refuse answers the peer's name with not_allowed; the handshake ends with
// err whether or not the answer reached it.
func (r *hsRun) refuse(err error) error {
	_ = r.c.write("status", hsAppendStatus(nil, hsStatusNotAllowed))
	return err
}

// recvName reads the initiator's name message.
func (r *hsRun) recvName() (hsNameMsg, error) {
	b, err := r.c.read("name")
	if err != nil {
		return hsNameMsg{}, err
	}
	name, err := hsDecodeName(b)
	if err != nil {
		return hsNameMsg{}, err
	}
	if name.Flags.Has(FlagNameMe) {
		return name, r.refuse(fmt.Errorf("%w: the peer (host %q) asks for a dynamic node name, which we do not hand out", ErrNotAllowed, hsTruncate(name.Name, 64)))
	}
	if err := hsValidNodeName(name.Name); err != nil {
		return name, err
	}
	r.peer, r.theirs, r.peerCreation = name.Name, hsExpandMandatory25(name.Flags), name.Creation
	if r.peer == r.self {
		return name, r.refuse(fmt.Errorf("%w: the peer uses our own name %s", ErrNotAllowed, r.peer))
	}
	return name, nil
}

// checkNameFlags refuses a peer whose name message lacks required flags.
// The old name message holds only the low 32 flag bits; the rest comes with
// the complement and is checked then.
func (r *hsRun) checkNameFlags(old bool) error {
	required := r.h.cfg.Required
	if old {
		required &= 0xffffffff
	}
	if missing := r.theirs.Missing(required); missing != 0 {
		return r.refuse(hsMissingFlagsError(r.peer, missing))
	}
	return nil
}

// sendStatus answers the peer's name as OTP's net_kernel does
// (hsDecideStatus) and reports whether the peer's answer to alive lets its
// new connection replace the one we hold.
func (r *hsRun) sendStatus() (replaceOld bool, _ error) {
	h := r.h
	connected := h.cfg.Connections != nil && h.cfg.Connections.Connected(r.peer)
	status := hsDecideStatus(r.self, r.peer, h.isDialing(r.peer), connected)
	h.log.Debug("answering a connection attempt", "peer", r.peer, "status", status)
	if err := r.c.write("status", hsAppendStatus(nil, status)); err != nil {
		return false, err
	}
	switch status {
	case hsStatusOKSimultaneous:
		h.supersede(r.peer)
	case hsStatusNOK:
		return false, fmt.Errorf("%w (we answered nok to %s)", ErrSimultaneousConnect, r.peer)
	case hsStatusAlive:
		return r.recvAliveAnswer()
	}
	return false, nil
}

// recvAliveAnswer reads the peer's answer to alive: true replaces the
// connection we hold, false keeps it and ends this handshake.
func (r *hsRun) recvAliveAnswer() (replaceOld bool, _ error) {
	b, err := r.c.read("alive answer")
	if err != nil {
		return false, err
	}
	answer, err := hsDecodeStatus(b)
	if err != nil {
		return false, err
	}
	switch answer {
	case hsStatusTrue:
		return true, nil
	case hsStatusFalse:
		return false, fmt.Errorf("%w: it answered false to alive (its existing connection to us stays)", ErrPeerRefused)
	default:
		return false, hsMalformed("answer %q to alive, want true or false", answer)
	}
}

// recvComplement reads the complement that follows an old name message: the
// high flag bits, checked now, and the peer's creation.
func (r *hsRun) recvComplement() error {
	b, err := r.c.read("complement")
	if err != nil {
		return err
	}
	high, cr, err := hsDecodeComplement(b)
	if err != nil {
		return err
	}
	r.theirs = hsExpandMandatory25(r.theirs | Flags(high)<<32)
	r.peerCreation = cr
	if missing := r.theirs.Missing(r.h.cfg.Required); missing != 0 {
		return hsMissingFlagsError(r.peer, missing)
	}
	return nil
}

// recvChallengeReply reads the initiator's proof of the cookie and returns
// its challenge to us.
func (r *hsRun) recvChallengeReply() (uint32, error) {
	b, err := r.c.read("challenge reply")
	if err != nil {
		return 0, err
	}
	theirChallenge, digest, err := hsDecodeChallengeReply(b)
	if err != nil {
		return 0, err
	}
	if !hsSameDigest(digest, hsDigest(r.ours, r.cookie)) {
		return 0, fmt.Errorf("%w with node %s: its challenge reply does not match our cookie", ErrWrongCookie, r.peer)
	}
	return theirChallenge, nil
}

// disconnectOld closes the connection to the peer we hold, waiting until it
// is gone, within the handshake's deadline.
func (r *hsRun) disconnectOld() error {
	ctx, cancel := context.WithDeadline(context.Background(), r.c.deadline)
	err := r.h.cfg.Connections.Disconnect(ctx, r.peer)
	cancel()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w while closing the old connection to %s: %w", ErrHandshakeTimeout, r.peer, err)
	default:
		return fmt.Errorf("closing the old connection to %s: %w", r.peer, err)
	}
}
