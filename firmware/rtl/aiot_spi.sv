// aiot_spi: SPI slave (mode 0, MSB first) and transaction decoder of docs/register-map.md §1.
// The shift registers run on SCK (ACC_CS_N high resets them); whole bytes cross into the
// system clock domain through toggle synchronizers, so SCK may be up to ~1/3 of clk.
// WRITE 0x02 A2 A1 A0 D...: one bus_we per data byte, address auto-increment.
// READ  0x0B A2 A1 A0 XX D...: the byte at A is fetched during the dummy byte; each byte
// loaded into the MISO shifter requests the next one, so every byte is valid on first read.
`resetall
`default_nettype none
module aiot_spi (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic        sck,
    input  wire logic        cs_n,
    input  wire logic        mosi,
    output      logic        miso,
    output      logic        bus_we,
    output      logic        bus_re,
    output      logic [23:0] bus_addr,
    output      logic [7:0]  bus_wdata,
    input  wire logic [7:0]  bus_rdata,
    output      logic        bus_end
);
    // ---------------------------------------------------------------- SCK domain
    // power-up values: ACC_CS_N may be high from the start, so its reset edge never comes
    logic [2:0] bitcnt = '0;
    logic [6:0] sh_in;
    logic [2:0] bytecnt = '0;       // completed bytes, saturating at 7
    logic [7:0] rx_byte;
    logic       rx_tog = 1'b0;
    logic [7:0] sh_out = '0;
    logic       tx_tog = 1'b0;
    logic [7:0] tx_next;            // sys domain, stable when loaded

    always_ff @(posedge sck or posedge cs_n) begin
        if (cs_n) begin
            bitcnt <= '0; bytecnt <= '0;
        end else begin
            sh_in <= {sh_in[5:0], mosi};
            bitcnt <= bitcnt + 3'd1;
            if (bitcnt == 3'd7 && bytecnt != 3'd7) bytecnt <= bytecnt + 3'd1;
        end
    end
    always_ff @(posedge sck) begin
        if (!cs_n && bitcnt == 3'd7) begin
            rx_byte <= {sh_in, mosi};
            rx_tog <= ~rx_tog;
        end
    end
    always_ff @(negedge sck or posedge cs_n) begin
        if (cs_n) sh_out <= '0;
        else if (bitcnt == 3'd0 && bytecnt >= 3'd5) sh_out <= tx_next;
        else sh_out <= {sh_out[6:0], 1'b0};
    end
    always_ff @(negedge sck) begin
        if (!cs_n && bitcnt == 3'd0 && bytecnt >= 3'd5) tx_tog <= ~tx_tog;
    end
    assign miso = sh_out[7];

    // ---------------------------------------------------------------- system domain
    logic [2:0] rx_s, tx_s;
    logic [3:0] cs_s;               // one stage longer than the byte toggles: bytes first
    always_ff @(posedge clk) begin
        rx_s <= {rx_s[1:0], rx_tog};
        tx_s <= {tx_s[1:0], tx_tog};
        cs_s <= {cs_s[2:0], cs_n};
    end
    logic rx_ev, tx_ev, cs_rise, cs_fall;
    always_comb begin
        rx_ev = rx_s[2] ^ rx_s[1];
        tx_ev = tx_s[2] ^ tx_s[1];
        cs_rise = cs_s[3:2] == 2'b01;
        cs_fall = cs_s[3:2] == 2'b10;
    end

    logic [7:0]  cmd;
    logic [2:0]  idx;               // byte index in the transaction, saturating
    logic        rd_pend1, rd_pend2, rd_pend3;
    always_ff @(posedge clk) begin
        bus_we <= 1'b0; bus_re <= 1'b0; bus_end <= 1'b0;
        rd_pend3 <= rd_pend2;
        rd_pend2 <= rd_pend1;
        rd_pend1 <= 1'b0;
        if (rd_pend3) tx_next <= bus_rdata;      // bus read data is valid two cycles after bus_re
        if (rst) begin
            idx <= '0; cmd <= '0;
        end else begin
            if (cs_fall) idx <= '0;
            if (cs_rise) begin bus_end <= 1'b1; idx <= '0; end
            else if (rx_ev) begin
                if (idx != 3'd7) idx <= idx + 3'd1;
                unique case (idx)
                    3'd0: cmd <= rx_byte;
                    3'd1: bus_addr[23:16] <= rx_byte;
                    3'd2: bus_addr[15:8] <= rx_byte;
                    3'd3: begin
                        bus_addr[7:0] <= rx_byte;
                        if (cmd == 8'h0B) begin rd_pend1 <= 1'b1; bus_re <= 1'b1; end
                    end
                    default: if (cmd == 8'h02) begin bus_we <= 1'b1; bus_wdata <= rx_byte; end
                endcase
            end
            // after a write, advance the address
            if (bus_we) bus_addr <= bus_addr + 24'd1;
            // a byte went into the MISO shifter: fetch the next one
            if (tx_ev && cmd == 8'h0B && idx >= 3'd4) begin
                bus_addr <= bus_addr + 24'd1;
                bus_re <= 1'b1; rd_pend1 <= 1'b1;
            end
        end
    end
endmodule
`default_nettype wire
