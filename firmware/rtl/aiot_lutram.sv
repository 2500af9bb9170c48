// aiot_lutram: small RAM with one clocked write port and one asynchronous read port
// (7-series distributed RAM).
`resetall
`default_nettype none
module aiot_lutram #(
    parameter int WIDTH = 16,          // bits per word
    parameter int DEPTH = 64,          // words
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  wire logic             clk,
    input  wire logic             we,
    input  wire logic [AW-1:0]    waddr,
    input  wire logic [WIDTH-1:0] wdata,
    input  wire logic [AW-1:0]    raddr,
    output      logic [WIDTH-1:0] rdata
);
    initial if (WIDTH < 1 || DEPTH < 1) $error("aiot_lutram: WIDTH and DEPTH must be positive (instance %m)");
    (* ram_style = "distributed" *) logic [WIDTH-1:0] mem [DEPTH];
    always_ff @(posedge clk) if (we) mem[waddr] <= wdata;
    assign rdata = mem[raddr];
endmodule
`default_nettype wire
