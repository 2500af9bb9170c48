// ice40_spram: one iCE40UP5K SPRAM (16K x 16 bit, single-ported, byte write mask). Synthesis
// instantiates SB_SPRAM256KA; simulation uses the behavioural model below (same timing: the read
// data of a cycle's address appears after the clock edge and holds until the next read).
`resetall
`default_nettype none
module ice40_spram (
    input  wire logic        clk,
    input  wire logic        cs,      // read (we = 0) or write (we = 1) this cycle
    input  wire logic        we,
    input  wire logic [1:0]  be,      // byte enables of a write
    input  wire logic [13:0] addr,
    input  wire logic [15:0] wdata,
    output      logic [15:0] rdata
);
`ifdef SYNTHESIS
    SB_SPRAM256KA u_ram (.ADDRESS(addr), .DATAIN(wdata), .MASKWREN({be[1], be[1], be[0], be[0]}),
        .WREN(we), .CHIPSELECT(cs), .CLOCK(clk), .STANDBY(1'b0), .SLEEP(1'b0), .POWEROFF(1'b1),
        .DATAOUT(rdata));
`else
    logic [15:0] mem [16384];
    always_ff @(posedge clk) begin
        if (cs && we) begin
            if (be[0]) mem[addr][7:0] <= wdata[7:0];
            if (be[1]) mem[addr][15:8] <= wdata[15:8];
        end else if (cs) rdata <= mem[addr];
    end
`endif
endmodule
`default_nettype wire
