package discovery

// ExperimentUseMiekg makes r parse replies with miekg/dns's Unpack
// (decodeMsg) instead of the hand parser. It exists only in this commit, to
// measure the two parsers against inet_res in one run
// (bench/discovery-inet-res.sh -rounds 30); the next commit keeps one parser.
func (r *DNSResolver) ExperimentUseMiekg() { r.decode = decodeMsg }
