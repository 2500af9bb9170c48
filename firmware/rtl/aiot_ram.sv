// aiot_ram: simple dual-port RAM (one write port with per-lane enables, one synchronous read
// port). Used for every engine memory; DISTRIBUTED selects LUT RAM instead of block RAM.
`resetall
`default_nettype none
module aiot_ram #(
    parameter int LANES = 1,           // lanes per word (each with its own write enable)
    parameter int LANE_BITS = 8,       // bits per lane
    parameter int DEPTH = 256,         // words
    parameter int DISTRIBUTED = 0,     // 1: LUT RAM, 0: block RAM
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1,
    localparam int WIDTH = LANES * LANE_BITS
) (
    input  wire logic             clk,
    input  wire logic [LANES-1:0] we,
    input  wire logic [AW-1:0]    waddr,
    input  wire logic [WIDTH-1:0] wdata,
    input  wire logic [AW-1:0]    raddr,
    output      logic [WIDTH-1:0] rdata
);
    initial begin
        if (LANES < 1 || LANE_BITS < 1 || DEPTH < 1)
            $error("aiot_ram: LANES, LANE_BITS and DEPTH must be positive (instance %m)");
    end

    generate
        if (DISTRIBUTED != 0) begin : g_lut
            (* ram_style = "distributed" *) logic [WIDTH-1:0] mem [DEPTH];
            initial for (int i = 0; i < DEPTH; i++) mem[i] = '0;   // power-up contents (INIT) are zero
            always_ff @(posedge clk) begin
                for (int i = 0; i < LANES; i++)
                    if (we[i]) mem[waddr][i*LANE_BITS +: LANE_BITS] <= wdata[i*LANE_BITS +: LANE_BITS];
                rdata <= mem[raddr];
            end
        end else begin : g_bram
            (* ram_style = "block" *) logic [WIDTH-1:0] mem [DEPTH];
            initial for (int i = 0; i < DEPTH; i++) mem[i] = '0;   // power-up contents (INIT) are zero
            always_ff @(posedge clk) begin
                for (int i = 0; i < LANES; i++)
                    if (we[i]) mem[waddr][i*LANE_BITS +: LANE_BITS] <= wdata[i*LANE_BITS +: LANE_BITS];
                rdata <= mem[raddr];
            end
        end
    endgenerate
endmodule
`default_nettype wire
