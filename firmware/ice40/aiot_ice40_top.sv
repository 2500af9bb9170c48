// aiot_ice40_top: the accelerator on an iCE40UP5K board (iCEBreaker class). A thin shell around
// aiot_top (with firmware/ice40/rtl's aiot_accel: the iCE40 core): 12 MHz oscillator -> PLL -> 15.94 MHz system clock (the closest to 16 MHz a simple
// feedback PLL makes from 12 MHz: DIVR 0, DIVF 84, DIVQ 6), a power-on reset held until the PLL
// locks, and a MISO pin driven only while the accelerator is selected (the flash shares it).
// Same register map and SPI protocol as the XC7S15 build; REBOOT has no ICAP here (ignored).
`resetall
`default_nettype none
module aiot_ice40_top #(
    parameter int PARAM_BYTES = 32768   // one SPRAM
) (
    input  wire logic clk_12m,
    input  wire logic spi_sck,
    input  wire logic acc_cs_n,
    input  wire logic spi_mosi,
    output wire logic spi_miso,
    output      logic busy,
    output      logic led_done_n   // lit once the PLL has locked and reset is released
);
    logic clk, locked;
    SB_PLL40_PAD #(.FEEDBACK_PATH("SIMPLE"), .DIVR(4'd0), .DIVF(7'd84), .DIVQ(3'd6), .FILTER_RANGE(3'd1))
        u_pll (.PACKAGEPIN(clk_12m), .PLLOUTGLOBAL(clk), .LOCK(locked), .RESETB(1'b1), .BYPASS(1'b0));

    // synchronous reset: 16 cycles after lock
    logic [4:0] por = '0;
    logic       rst;
    always_ff @(posedge clk) begin
        if (!locked) por <= '0;
        else if (!por[4]) por <= por + 5'd1;
    end
    assign rst = !por[4];
    assign led_done_n = rst;

    logic miso;
    aiot_top #(.LANES(1), .POST_LANES(1), .PARAM_BYTES(PARAM_BYTES),
               .CLOCK_HZ(15_937_500), .REBOOT_ICAP(0)) u_top (
        .clk, .rst, .spi_sck, .spi_cs_n(acc_cs_n), .spi_mosi, .spi_miso(miso), .busy);

    // tristate MISO: PIN_TYPE 1010_01 = output with enable, input unused
    SB_IO #(.PIN_TYPE(6'b1010_01)) u_miso (.PACKAGE_PIN(spi_miso), .OUTPUT_ENABLE(!acc_cs_n), .D_OUT_0(miso));
endmodule
`default_nettype wire
