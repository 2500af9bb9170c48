// aiot_lane: one multiply-accumulate lane (one DSP48E1: 25 x 18 signed product).
// MAC: acc = (first ? bias : acc) + a * b
// RQ1: acc = acc[23:0] * m            (low part of the requant product, exact)
// RQ2: acc = acc + ((acc_orig >>> 24) * m) << 24
// so after RQ1, RQ2 the accumulator holds acc * m exactly (|acc| < 2^34, m < 2^16).
`resetall
`default_nettype none
module aiot_lane (
    input  wire logic               clk,
    input  wire logic               en,      // a token is in this stage
    input  wire logic [1:0]         op,      // 0 MAC, 1 RQ1, 2 RQ2
    input  wire logic               first,   // first MAC of a block: start from bias
    input  wire logic signed [24:0] a,
    input  wire logic signed [17:0] b,
    input  wire logic signed [31:0] bias,
    output      logic signed [47:0] acc
);
    logic signed [23:0] orig_hi;
    logic signed [24:0] a_sel;
    logic signed [42:0] prod;
    logic signed [47:0] base, addend;

    // continuous assignments only: Icarus 11 re-triggers always_comb blocks that read what they write
    assign a_sel = (op == 2'd1) ? {1'b0, acc[23:0]} : (op == 2'd2) ? {orig_hi[23], orig_hi} : a;
    assign prod = a_sel * b;
    assign addend = (op == 2'd2) ? {prod[23:0], 24'd0} : 48'(prod);
    assign base = (op == 2'd1) ? 48'sd0 : (op == 2'd0 && first) ? 48'(bias) : acc;

    always_ff @(posedge clk) begin
        if (en) begin
            acc <= base + addend;
            if (op == 2'd1) orig_hi <= acc[47:24];
        end
    end
endmodule
`default_nettype wire
