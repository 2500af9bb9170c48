// The daemon core.
