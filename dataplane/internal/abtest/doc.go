// Package abtest is the switch for paired live A/B experiments: one
// binary holds two variants of a change, runs them in alternate batches,
// and times every batch, so that both variants meet whatever the machine
// does during the run (docs/benchmark.md, "Paired live A/B").
//
// Without the build tag ttab, On is false and every function is empty:
// the worker's calls compile to nothing. An experiment, in its own working
// tree, branches on B (or NextB, for work done one batch ahead) where the
// variants differ, builds tunterm with -tags ttab, and runs bench/live
// with TT_AB_OUT set to a path: each tunterm process then writes, every
// 4096 batches, one line to TT_AB_OUT.<pid> with both variants' time per
// frame and B/A. Only one worker may run (--workers 1): the sums are not
// shared safely between threads.
package abtest
