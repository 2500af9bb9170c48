// The integer arithmetic contract of docs/arithmetic.md: primitives P1-P3.
