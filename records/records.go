// Package records holds the domain record types every layer above it shares:
// the billing row and the interval read as the producers accept them, the
// layouts and their columns (data contract 2.2, 2.4, 3), the rejected row
// with its reasons, reject codes and rule ids, the file name convention
// (data contract 2.3) and the order in which files are taken (2.5).
//
// It sits below the producers (readers, ingest, SDK) and the processors
// (rules, validation), so the rules know the records without knowing how a
// file is read, and the readers share their types without borrowing them
// from each other. It reads no file content: a file is read by the
// producers; Order only looks at names and, for names that break the
// convention, at modification times.
package records
