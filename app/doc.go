// Package app turns a checked configuration into the TSA that runs it:
// one immutable generation of timestamp services (their keys activated,
// their filters and policy maps built, the clock gate they share) behind
// one pointer that a reload swaps whole, the reload itself (recorded;
// a refused one keeps the running generation), the transparency log
// with its writer, the clock monitor and the read side; Start runs them
// in order over the event store and Close stops them in reverse.
// cmd/tsad keeps the flags, the wiring of listeners, the signals and the
// start-up report.
package app
