// Package billing reads Opower legacy billing files (data contract section 2):
// tab-separated rows with a header, in the full layout or the customer/usage
// two-file layout, plain or gzip or zip, into typed rows (records.BillingRow)
// or rejected rows (records.Rejected).
package billing
