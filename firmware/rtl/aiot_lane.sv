// aiot_lane: one multiply-accumulate lane, written in the form yosys packs entirely into one
// DSP48E1 (P <= (first ? C : P) + A * B, A 25 bits, B 18 bits; no fabric adder).
// MAC: acc = (first ? bias : acc) + a * b
// Requantization (acc * m) is not done here: the one shared epilogue multiplies the captured
// accumulator (|acc| < 2^34, docs/arithmetic.md §6), which saves a 25-bit operand select a lane.
`resetall
`default_nettype none
module aiot_lane (
    input  wire logic               clk,
    input  wire logic               en,      // a token is in this stage
    input  wire logic               first,   // first MAC of a block: start from bias
    input  wire logic signed [24:0] a,
    input  wire logic signed [17:0] b,
    input  wire logic signed [31:0] bias,
    output      logic signed [47:0] acc
);
    always_ff @(posedge clk)
        if (en) acc <= (first ? 48'(bias) : acc) + a * b;
endmodule
`default_nettype wire
