// aiot_post: the epilogue of docs/arithmetic.md (P1)-(P3) for one element, two pipeline stages.
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
    output      logic signed [15:0] y        // two cycles after v
);
    logic signed [47:0] rc, q;
    logic signed [18:0] qc;                  // q clipped to 19 bits: enough to saturate any 16-bit range
    logic signed [16:0] z1, lo1, hi1;
    logic               relu1;
    logic signed [19:0] s;

    always_comb begin
        rc = (n == 6'd0) ? 48'sd0 : ((48'sd1 <<< (n - 6'd1)) - (v < 0 ? 48'sd1 : 48'sd0));
        q = (v + rc) >>> n;
    end

    always_ff @(posedge clk) begin
        if (q > 48'sd131071) qc <= 19'sd131071;
        else if (q < -48'sd131072) qc <= -19'sd131072;
        else qc <= q[18:0];
        z1 <= z; lo1 <= lo; hi1 <= hi; relu1 <= relu;
    end

    always_comb begin
        s = 20'(qc) + 20'(z1);
        if (s > 20'(hi1)) s = 20'(hi1);
        if (s < 20'(lo1)) s = 20'(lo1);
        if (relu1 && s < 20'(z1)) s = 20'(z1);
    end

    always_ff @(posedge clk) y <= s[15:0];
endmodule
`default_nettype wire
