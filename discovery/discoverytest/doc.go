// Package discoverytest holds test doubles for package discovery: a fake
// Clock moved by hand (Clock), a scripted Resolver, an in-memory Connector,
// and helpers that run an in-process github.com/miekg/dns server (or a raw
// UDP responder) on 127.0.0.1:0.
//
// The fakes are safe for concurrent use and never sleep. They pair well with
// testing/synctest: everything they block on is a channel, so synctest.Wait
// can tell when the discoverer under test is idle.
//
// Only tests, examples and benchmarks import this package.
package discoverytest
