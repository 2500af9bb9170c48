// aiot_icap: REBOOT (docs/register-map.md 0x18) on the XC7S15. On `go` it writes the IPROG
// sequence of UG470 (table 7-1) into ICAPE2, one 32-bit word a cycle:
//   FFFFFFFF dummy, AA995566 sync, 20000000 NOOP, 30020001 write WBSTAR, WBSTAR,
//   30008001 write CMD, 0000000F IPROG, 20000000 NOOP
// WBSTAR = {RS[1:0] = 0, RS_TS_B = 0, START_ADDR = MULTIBOOT_ADDR}. ICAPE2 takes every byte
// bit-reversed (UG470 "Parallel Bus Bit Order"), so the words are swapped here. After IPROG
// the device reconfigures from WBSTAR; on a failed load it falls back to the golden image.
// ICAPE2 is the device primitive; simulation uses the behavioural model in sim/ICAPE2.sv.
`resetall
`default_nettype none
module aiot_icap (
    input  wire logic        clk,       // <= 100 MHz (ICAPE2's limit on the XC7S15)
    input  wire logic        rst,
    input  wire logic        go,        // pulse: reconfigure from wbstar
    input  wire logic [23:0] wbstar,    // flash byte address of the image
    output      logic        busy
);
    logic [3:0]  k;                     // word index while sending
    logic [31:0] word, swapped;
    logic        csib;

    always_comb begin
        unique case (k)
            4'd0: word = 32'hFFFFFFFF;
            4'd1: word = 32'hAA995566;
            4'd2: word = 32'h20000000;
            4'd3: word = 32'h30020001;
            4'd4: word = {8'd0, wbstar};
            4'd5: word = 32'h30008001;
            4'd6: word = 32'h0000000F;
            default: word = 32'h20000000;
        endcase
    end
    for (genvar i = 0; i < 32; i++) begin : g_swap
        assign swapped[i] = word[(i / 8) * 8 + 7 - (i % 8)];
    end

    logic [31:0] icap_i;
    always_ff @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0; csib <= 1'b1; k <= '0;
        end else if (!busy) begin
            csib <= 1'b1;
            if (go) begin busy <= 1'b1; k <= '0; end
        end else begin
            csib <= 1'b0;              // registered: word k is on I while CSIB is low
            icap_i <= swapped;
            k <= k + 4'd1;
            if (k == 4'd7) busy <= 1'b0;
        end
    end

    /* verilator lint_off PINCONNECTEMPTY */
    ICAPE2 #(.ICAP_WIDTH("X32")) u_icape2 (.CLK(clk), .CSIB(csib), .RDWRB(1'b0), .I(icap_i), .O());
    /* verilator lint_on PINCONNECTEMPTY */
endmodule
`default_nettype wire
