// ICAPE2 behavioural model for simulation (the device primitive has no model here). Decodes what
// a 7-series configuration engine would: writes (RDWRB = 0, CSIB = 0) are sampled on CLK, each
// byte bit-reversed as UG470 specifies for ICAP; words before the sync word AA995566 are ignored;
// after it, type-1 write packets load configuration registers. Records WBSTAR (register 0x10)
// and counts IPROG commands (CMD register 0x04, value 0x0F). Any other packet, or a word count
// other than 1, counts as a protocol error: the test bench requires zero.
`default_nettype none
/* verilator lint_off UNUSEDPARAM */
module ICAPE2 #(
    parameter DEVICE_ID = 32'h03620093,    // XC7S15
    parameter ICAP_WIDTH = "X32",
    parameter SIM_CFG_FILE_NAME = "NONE"
) (
    input  wire        CLK,
    input  wire        CSIB,
    input  wire        RDWRB,
    input  wire [31:0] I,
    output wire [31:0] O
);
/* verilator lint_on UNUSEDPARAM */
    assign O = 32'd0;
    logic        synced = 1'b0;
    logic [13:0] reg_addr = '0;
    int          words_left = 0;
    int          iprog_count = 0;
    int          errors = 0;
    logic [31:0] wbstar = '0;
    logic [31:0] w;
    always_comb for (int i = 0; i < 32; i++) w[i] = I[(i / 8) * 8 + 7 - (i % 8)];   // un-swap
    always @(posedge CLK) begin
        if (!CSIB && !RDWRB) begin
            if (!synced) begin
                if (w == 32'hAA995566) synced <= 1'b1;
            end else if (words_left > 0) begin
                if (reg_addr == 14'h10) wbstar <= w;
                else if (reg_addr == 14'h04 && w == 32'h0000000F) begin
                    iprog_count <= iprog_count + 1;
                    synced <= 1'b0;            // IPROG: the device reconfigures
                    $fdisplay(32'h8000_0002, "ICAPE2: IPROG, WBSTAR = 0x%08x", wbstar);
                end else begin
                    errors <= errors + 1;
                    $fdisplay(32'h8000_0002, "ICAPE2: unexpected write 0x%08x to register 0x%02x", w, reg_addr);
                end
                words_left <= words_left - 1;
            end else if (w == 32'h20000000) begin
                // NOOP
            end else if (w[31:29] == 3'b001 && w[28:27] == 2'b10 && w[10:0] == 11'd1) begin
                reg_addr <= w[26:13]; words_left <= 1;
            end else begin
                errors <= errors + 1;
                $fdisplay(32'h8000_0002, "ICAPE2: unsupported packet 0x%08x", w);
            end
        end
    end
endmodule
`default_nettype wire
