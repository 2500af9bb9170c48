// aiot_top: the accelerator as the FPGA sees it: SPI pins, BUSY pin, clock and reset.
// Shape and lane count are synthesis parameters; bit widths, zero points, requant multipliers,
// weights and EXP tables are runtime data in PARAM memory (docs/register-map.md §6).
`resetall
`default_nettype none
module aiot_top #(
    parameter int WINDOW = 24,            // W: window length
    parameter int FEATURES = 1,           // F: input features
    parameter int D_MODEL = 16,           // d: model width
    parameter int HEADS = 1,              // H: attention heads
    parameter int LAYERS = 1,             // N: encoder layers
    parameter int HORIZON = 1,            // P: forecast steps
    parameter int LANES = 16,             // parallel MAC lanes (DSP48E1 each)
    parameter int POST_LANES = 1,         // requant epilogue units
    parameter int PARAM_BYTES = 8192,     // PARAM memory capacity
    parameter int CLOCK_HZ = 100_000_000, // system clock, reported in CLOCK_HZ
    parameter int REBOOT_ICAP = 1         // 1: REBOOT through ICAPE2 (XC7S15); 0: no ICAP (iCE40)
) (
    input  wire logic clk,
    input  wire logic rst,            // synchronous, active high
    input  wire logic spi_sck,
    /* verilator lint_off SYNCASYNCNET */  // CS resets the SCK-domain shifters and is synchronized for the system clock
    input  wire logic spi_cs_n,
    /* verilator lint_on SYNCASYNCNET */
    input  wire logic spi_mosi,
    output      logic spi_miso,
    output      logic busy            // BUSY pin: high while an inference runs
);
    logic        bus_we, bus_re, bus_end;
    logic [23:0] bus_addr;
    logic [7:0]  bus_wdata, bus_rdata;

    aiot_spi u_spi (.clk, .rst, .sck(spi_sck), .cs_n(spi_cs_n), .mosi(spi_mosi), .miso(spi_miso),
                    .bus_we, .bus_re, .bus_addr, .bus_wdata, .bus_rdata, .bus_end);

    aiot_accel #(.WINDOW(WINDOW), .FEATURES(FEATURES), .D_MODEL(D_MODEL), .HEADS(HEADS), .LAYERS(LAYERS),
                 .HORIZON(HORIZON), .LANES(LANES), .POST_LANES(POST_LANES), .PARAM_BYTES(PARAM_BYTES),
                 .CLOCK_HZ(CLOCK_HZ), .REBOOT_ICAP(REBOOT_ICAP)) u_accel (
        .clk, .rst, .bus_we, .bus_re, .bus_addr, .bus_wdata, .bus_rdata, .bus_end, .busy_pin(busy));
endmodule
`default_nettype wire
