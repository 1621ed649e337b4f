// Package layout holds no code: its test asserts the import rules of
// docs/architecture.md, so they stay true as the code grows.
package layout
