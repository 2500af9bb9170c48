// aiot_lane: one multiply-accumulate lane, written in the form yosys packs entirely into one
// DSP48E1 (P <= (restart ? C : P) + A * B, A 25 bits, B 18 bits; no fabric adder).
// MAC: acc = (first ? bias : acc) + a * b
// RQ1: acc = acc[23:0] * m            (low product of the requantization, exact)
// RQ2: acc = (acc_orig >>> 24) * m    (high product); lo holds the low product
// The epilogue forms acc_orig * m = lo + (acc << 24) exactly (|acc_orig| < 2^34, m < 2^17).
`resetall
`default_nettype none
module aiot_lane (
    input  wire logic               clk,
    input  wire logic               en,      // a token is in this stage
    input  wire logic [1:0]         op,      // 0 MAC, 1 RQ1, 2 RQ2
    input  wire logic               first,   // first MAC of a block: start from bias
    input  wire logic signed [24:0] a,
    input  wire logic signed [17:0] b,
    input  wire logic signed [31:0] bias,    // zero on requant steps
    output      logic signed [47:0] acc,
    output      logic signed [47:0] lo       // low requant product (valid after RQ2)
);
    logic signed [23:0] orig_hi;
    logic signed [24:0] a_sel;
    logic               restart;

    assign a_sel = (op == 2'd1) ? {1'b0, acc[23:0]} : (op == 2'd2) ? {orig_hi[23], orig_hi} : a;
    assign restart = first || (op != 2'd0);

    always_ff @(posedge clk) begin
        if (en) acc <= (restart ? 48'(bias) : acc) + a_sel * b;
        if (en && op == 2'd1) orig_hi <= acc[47:24];
        if (en && op == 2'd2) lo <= acc;
    end
endmodule
`default_nettype wire
