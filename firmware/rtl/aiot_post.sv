// aiot_post: the epilogue of docs/arithmetic.md (P1)-(P3) for one element, three pipeline stages
// (rounding add | shift and clip | saturation, ReLU, centering: one carry chain a stage).
//   y = SAT_[lo,hi]( z + RSHR(v, n) ), then optionally max(y, z) (ReLU, E4).
// RSHR half away from zero is (v + 2^(n-1) - [v < 0]) >>> n for n >= 1 (floor shift).
`resetall
`default_nettype none
module aiot_post (
    input  wire logic               clk,
    input  wire logic signed [47:0] v,
    input  wire logic [5:0]         n,
    input  wire logic signed [16:0] z,
    input  wire logic signed [16:0] lo,
    input  wire logic signed [16:0] hi,
    input  wire logic               relu,
    input  wire logic               center,  // output y - z (values only ever used centered)
    output      logic signed [16:0] y        // three cycles after v (17 bits when centered)
);
    logic signed [47:0] vr;                  // v + rounding term
    logic [5:0]         n0;
    logic signed [16:0] z0, lo0, hi0;
    logic               relu0, center0;
    logic signed [47:0] q;
    logic signed [18:0] qc;                  // q clipped to 18 bits (sign-extended): enough to saturate any 16-bit range
    logic signed [16:0] z1;
    logic signed [19:0] lz1, hz1;            // the bounds relative to z: SAT(z + q) - z = SAT_[lo-z, hi-z](q)
    logic               hl1;                 // hi < lo (never for valid bit widths; kept exact anyway)
    logic               relu1, center1;
    /* verilator lint_off UNUSEDSIGNAL */  // saturated to at most 16 bits: the top bits equal bit 15/16
    logic signed [19:0] s;
    /* verilator lint_on UNUSEDSIGNAL */

    function automatic logic signed [47:0] round_term(input logic signed [47:0] x, input logic [5:0] sh);
        round_term = (sh == 6'd0) ? 48'sd0 : ((48'sd1 <<< (sh - 6'd1)) - (x < 0 ? 48'sd1 : 48'sd0));
    endfunction
    always_ff @(posedge clk) begin
        vr <= v + round_term(v, n);
        n0 <= n; z0 <= z; lo0 <= lo; hi0 <= hi; relu0 <= relu; center0 <= center;
    end
    assign q = vr >>> n0;

    always_ff @(posedge clk) begin
        // clip to 18 bits: q fits iff bits 47..17 are all equal
        if (q[47:17] == {31{q[17]}}) qc <= {q[17], q[17:0]};
        else qc <= q[47] ? -19'sd131072 : 19'sd131071;
        z1 <= z0; relu1 <= relu0; center1 <= center0;
        lz1 <= 20'(lo0) - 20'(z0); hz1 <= 20'(hi0) - 20'(z0); hl1 <= hi0 < lo0;
    end

    // the saturation and ReLU of (P2)/(E4) on q relative to z, so that the bounds are compared with
    // q in parallel and z is added once at the end (centered outputs need no subtraction)
    logic signed [19:0] c, d;
    always_comb begin
        if ($signed(20'(qc)) > hz1) c = hl1 ? lz1 : hz1;
        else if ($signed(20'(qc)) < lz1) c = lz1;
        else c = 20'(qc);
        d = (relu1 && c < 0) ? 20'sd0 : c;
    end
    assign s = center1 ? d : d + 20'(z1);

    always_ff @(posedge clk) y <= 17'(s);
endmodule
`default_nettype wire
