// tb_aiot: runs every vector of a shared vector file (docs/arithmetic.md §11) through the
// accelerator exactly as the host does (docs/register-map.md §6.5, §7): upload the parameter
// image, VERIFY_PARAMS, then per vector write the INPUT window, START, wait for BUSY low, read
// the RESULT block and check its CRCs, sequence and outputs.
// +spi: through the SPI pins of aiot_top (mode 0, 25 MHz SCK), exactly as the host does;
// otherwise through the byte bus of aiot_accel (same register map, faster). Both are built.
// Plusargs: +image=FILE.hex +meta=FILE.meta +vectors=FILE.vectors.txt [+max=N] [+spi]
// Prints `N passed, M failed` and exits non-zero (via $fatal) on any mismatch.
`timescale 1ns / 1ps
`default_nettype none
module tb_aiot #(
    parameter int WINDOW = 24,
    parameter int FEATURES = 1,
    parameter int D_MODEL = 16,
    parameter int HEADS = 1,
    parameter int LAYERS = 1,
    parameter int HORIZON = 1,
    parameter int LANES = 16,
    parameter int POST_LANES = 1,
    parameter int PARAM_BYTES = 8192,
    parameter int REBOOT_ICAP = 1,      // the design has ICAPE2 (XC7S15): check REBOOT
    parameter int SCK_HALF_NS = 20      // SPI: 25 MHz SCK
);
    logic clk = 1'b0, rst = 1'b1;
    always #5 clk = ~clk;               // 100 MHz

    logic        bus_we = 0, bus_re = 0, bus_end = 0;
    logic [23:0] bus_addr = 0;
    logic [7:0]  bus_wdata = 0, bus_rdata;
    logic        busy, busy_spi, busy_bus;
    logic        sck = 0, cs_n = 1, mosi = 0, miso;
    int          SPI = 0;                 // 1: drive the SPI pins (+spi)
    assign busy = (SPI != 0) ? busy_spi : busy_bus;

    aiot_top #(.WINDOW(WINDOW), .FEATURES(FEATURES), .D_MODEL(D_MODEL), .HEADS(HEADS), .LAYERS(LAYERS),
               .HORIZON(HORIZON), .LANES(LANES), .POST_LANES(POST_LANES), .PARAM_BYTES(PARAM_BYTES), .REBOOT_ICAP(REBOOT_ICAP)) dut_spi (
        .clk, .rst, .spi_sck(sck), .spi_cs_n(cs_n), .spi_mosi(mosi), .spi_miso(miso), .busy(busy_spi));
    aiot_accel #(.WINDOW(WINDOW), .FEATURES(FEATURES), .D_MODEL(D_MODEL), .HEADS(HEADS), .LAYERS(LAYERS),
                 .HORIZON(HORIZON), .LANES(LANES), .POST_LANES(POST_LANES), .PARAM_BYTES(PARAM_BYTES), .REBOOT_ICAP(REBOOT_ICAP)) dut_bus (
        .clk, .rst, .bus_we, .bus_re, .bus_addr, .bus_wdata, .bus_rdata, .bus_end, .busy_pin(busy_bus));

    // what the ICAPE2 model (sim/ICAPE2.sv) inside the design under test saw
    int          icap_iprogs, icap_errors;
    logic [31:0] icap_wbstar;
    generate
        if (REBOOT_ICAP != 0) begin : g_icap_probe
            assign icap_iprogs = (SPI != 0) ? dut_spi.u_accel.g_icap.u_icap.u_icape2.iprog_count
                                            : dut_bus.g_icap.u_icap.u_icape2.iprog_count;
            assign icap_errors = (SPI != 0) ? dut_spi.u_accel.g_icap.u_icap.u_icape2.errors
                                            : dut_bus.g_icap.u_icap.u_icape2.errors;
            assign icap_wbstar = (SPI != 0) ? dut_spi.u_accel.g_icap.u_icap.u_icape2.wbstar
                                            : dut_bus.g_icap.u_icap.u_icape2.wbstar;
        end else begin : g_no_icap
            assign icap_iprogs = 0; assign icap_errors = 0; assign icap_wbstar = '0;
        end
    endgenerate

    // ---------------------------------------------------------------- host transactions
    logic [7:0] tx [0:16383];           // bytes of one transaction's data phase
    logic [7:0] rx [0:16383];

    task automatic spi_byte(input logic [7:0] b, output logic [7:0] r);
        for (int i = 7; i >= 0; i--) begin
            mosi = b[i];
            #(SCK_HALF_NS);
            sck = 1'b1; r[i] = miso;
            #(SCK_HALF_NS);
            sck = 1'b0;
        end
    endtask

    // WRITE addr, tx[0 .. n-1]; the transaction ends (CS rises / bus_end)
    task automatic host_write(input logic [23:0] addr, input int n);
        logic [7:0] r;
        if (SPI != 0) begin
            cs_n = 1'b0; #(SCK_HALF_NS);
            spi_byte(8'h02, r); spi_byte(addr[23:16], r); spi_byte(addr[15:8], r); spi_byte(addr[7:0], r);
            for (int i = 0; i < n; i++) spi_byte(tx[i], r);
            #(SCK_HALF_NS); cs_n = 1'b1; #(4 * SCK_HALF_NS);
        end else begin
            for (int i = 0; i < n; i++) begin
                @(posedge clk); bus_we <= 1'b1; bus_addr <= addr + 24'(i); bus_wdata <= tx[i];
            end
            @(posedge clk); bus_we <= 1'b0; bus_end <= 1'b1;
            @(posedge clk); bus_end <= 1'b0;
        end
    endtask

    // READ addr into rx[0 .. n-1]
    task automatic host_read(input logic [23:0] addr, input int n);
        logic [7:0] r;
        if (SPI != 0) begin
            cs_n = 1'b0; #(SCK_HALF_NS);
            spi_byte(8'h0B, r); spi_byte(addr[23:16], r); spi_byte(addr[15:8], r); spi_byte(addr[7:0], r);
            spi_byte(8'h00, r);
            for (int i = 0; i < n; i++) begin spi_byte(8'h00, r); rx[i] = r; end
            #(SCK_HALF_NS); cs_n = 1'b1; #(4 * SCK_HALF_NS);
        end else begin
            for (int i = 0; i < n; i++) begin
                @(posedge clk); bus_re <= 1'b1; bus_addr <= addr + 24'(i);
                @(posedge clk); bus_re <= 1'b0;
                @(posedge clk); #1 rx[i] = bus_rdata;
            end
            @(posedge clk); bus_end <= 1'b1;
            @(posedge clk); bus_end <= 1'b0;
        end
    endtask

    task automatic write32(input logic [23:0] addr, input logic [31:0] v);
        tx[0] = v[7:0]; tx[1] = v[15:8]; tx[2] = v[23:16]; tx[3] = v[31:24];
        host_write(addr, 4);
    endtask
    task automatic read32(input logic [23:0] addr, output logic [31:0] v);
        host_read(addr, 4);
        v = {rx[3], rx[2], rx[1], rx[0]};
    endtask

    function automatic logic [31:0] crc32(input int n);    // over rx[0 .. n-1]
        logic [31:0] c;
        c = 32'hFFFFFFFF;
        for (int i = 0; i < n; i++) begin
            c = c ^ {24'd0, rx[i]};
            for (int k = 0; k < 8; k++) c = c[0] ? ((c >> 1) ^ 32'hEDB88320) : (c >> 1);
        end
        return ~c;
    endfunction

    // ---------------------------------------------------------------- the run
    logic [7:0] image [0:65535];
    string      image_f, meta_f, vec_f, magic;
    int         fd, count, n_in, n_out, img_len, mw, mf, md, mh, mn, mp, maxv, rc;
    logic [31:0] img_crc, v32;
    int         passed, failed, first_cycles, max_cycles;
    int         in_vals [0:4095];
    int         exp_vals [0:63];

    initial begin
        passed = 0; failed = 0; first_cycles = -1; max_cycles = 0;
        if (!$value$plusargs("image=%s", image_f) || !$value$plusargs("meta=%s", meta_f) ||
            !$value$plusargs("vectors=%s", vec_f))
            $fatal(1, "usage: +image=FILE.hex +meta=FILE.meta +vectors=FILE.vectors.txt [+max=N]");
        if (!$value$plusargs("max=%d", maxv)) maxv = 1 << 30;
        if ($test$plusargs("spi")) SPI = 1;
        fd = $fopen(meta_f, "r");
        if (fd == 0) $fatal(1, "cannot open %s", meta_f);
        rc = $fscanf(fd, "%d %d %d %d %d %d %d %d", img_len, img_crc, mw, mf, md, mh, mn, mp);
        $fclose(fd);
        if (rc != 8) $fatal(1, "%s: expected 8 integers", meta_f);
        if (mw != WINDOW || mf != FEATURES || md != D_MODEL || mh != HEADS || mn != LAYERS || mp != HORIZON)
            $fatal(1, "model shape W%0d F%0d d%0d H%0d N%0d P%0d differs from this build", mw, mf, md, mh, mn, mp);
        $readmemh(image_f, image, 0, img_len - 1);

        repeat (4) @(posedge clk);
        rst = 1'b0;
        repeat (4) @(posedge clk);

        // ID register
        read32(24'h000000, v32);
        if (v32 != 32'h544F4941) $fatal(1, "ID reads %08x", v32);

        // MODEL_ID (0x40..0x5F): bytes read back as written; a PARAM write clears them (checked below)
        for (int i = 0; i < 32; i++) tx[i] = 8'(7 * i + 1);
        host_write(24'h000040, 32);
        host_read(24'h000040, 32);
        for (int i = 0; i < 32; i++) if (rx[i] != 8'(7 * i + 1)) $fatal(1, "MODEL_ID byte %0d reads %02x", i, rx[i]);

        // upload the parameter image (§6.5) in chunks, then verify
        for (int base = 0; base < img_len; base += 4096) begin
            int n;
            n = (img_len - base < 4096) ? img_len - base : 4096;
            for (int i = 0; i < n; i++) tx[i] = image[base + i];
            host_write(24'h010000 + 24'(base), n);
        end
        $display("[%0t] image uploaded (%0d bytes)", $time, img_len);
        host_read(24'h000040, 32);
        for (int i = 0; i < 32; i++) if (rx[i] != 8'd0) $fatal(1, "MODEL_ID byte %0d reads %02x after a PARAM write", i, rx[i]);
        write32(24'h000020, img_len);
        write32(24'h000024, img_crc);
        write32(24'h000008, 32'h8);
        v32 = 32'h10;
        while (v32[4]) read32(24'h00000C, v32);
        if (!v32[3]) $fatal(1, "PARAMS_VALID not set after VERIFY_PARAMS (STATUS %08x)", v32);
        read32(24'h000028, v32);
        if (v32 != img_crc) $fatal(1, "PARAM_CRC %08x, expected %08x", v32, img_crc);
        read32(24'h000010, v32);
        if (v32 != 0) $fatal(1, "SEQUENCE %0d after reset", v32);

        $display("[%0t] parameters verified", $time);
        fd = $fopen(vec_f, "r");
        if (fd == 0) $fatal(1, "cannot open %s", vec_f);
        rc = $fscanf(fd, "%s %d %d %d", magic, count, n_in, n_out);
        if (rc != 4 || magic != "aiotvec1") $fatal(1, "%s: not an aiotvec1 file", vec_f);
        if (n_in != WINDOW * FEATURES || n_out != HORIZON) $fatal(1, "%s: n_in/n_out do not match the shape", vec_f);
        if (count > maxv) count = maxv;

        for (int v = 0; v < count; v++) begin
            logic ok;
            int cyc;
            for (int i = 0; i < n_in; i++) if ($fscanf(fd, "%d", in_vals[i]) != 1) $fatal(1, "vector %0d: short input", v);
            for (int i = 0; i < n_out; i++) if ($fscanf(fd, "%d", exp_vals[i]) != 1) $fatal(1, "vector %0d: short output", v);
            for (int i = 0; i < n_in; i++) begin
                tx[2 * i] = in_vals[i][7:0]; tx[2 * i + 1] = in_vals[i][15:8];
            end
            host_write(24'h001000, 2 * n_in);
            write32(24'h000008, 32'h1);
            // the BUSY pin rises within 100 ns of the CS edge that ends START
            #100;
            if (!busy) $fatal(1, "vector %0d: BUSY not high 100 ns after START", v);
            while (busy) @(posedge clk);
            host_read(24'h003000, 16 + 2 * HORIZON + 4);
            ok = 1'b1;
            if (crc32(16 + 2 * HORIZON) != {rx[16 + 2 * HORIZON + 3], rx[16 + 2 * HORIZON + 2], rx[16 + 2 * HORIZON + 1], rx[16 + 2 * HORIZON]}) begin
                $display("vector %0d: RESULT_CRC mismatch", v); ok = 1'b0;
            end
            if (rx[0][1] != 1'b1 || rx[0][2] != 1'b0 || rx[0][0] != 1'b0) begin
                $display("vector %0d: result status %02x", v, rx[0]); ok = 1'b0;
            end
            if ({rx[7], rx[6], rx[5], rx[4]} != 32'(v + 1)) begin
                $display("vector %0d: sequence %0d", v, {rx[7], rx[6], rx[5], rx[4]}); ok = 1'b0;
            end
            cyc = int'({rx[15], rx[14], rx[13], rx[12]});
            if (first_cycles < 0) first_cycles = cyc;
            if (cyc > max_cycles) max_cycles = cyc;
            for (int i = 0; i < n_out; i++) begin
                logic signed [15:0] got;
                got = {rx[16 + 2 * i + 1], rx[16 + 2 * i]};
                if (int'(got) != exp_vals[i]) begin
                    $display("vector %0d output %0d: got %0d, expected %0d", v, i, got, exp_vals[i]); ok = 1'b0;
                end
            end
            // INPUT_CRC: the accelerator's CRC of the bytes it latched
            for (int i = 0; i < n_in; i++) begin
                logic [15:0] x16;
                x16 = 16'(in_vals[i]);
                rx[2 * i] = x16[7:0]; rx[2 * i + 1] = x16[15:8];
            end
            v32 = crc32(2 * n_in);
            host_read(24'h003008, 4);
            if ({rx[3], rx[2], rx[1], rx[0]} != v32) begin
                $display("vector %0d: INPUT_CRC mismatch", v); ok = 1'b0;
            end
            if (ok) passed++; else failed++;
        end
        $fclose(fd);

        // REBOOT (register map 0x18): only the whole key "IPRG" in one transaction issues IPROG
        // through ICAPE2, with WBSTAR = MULTIBOOT_ADDR (24 bits)
        if (REBOOT_ICAP != 0) begin
            write32(24'h000014, 32'hFFC3A500);            // the top byte is not writable
            read32(24'h000014, v32);
            if (v32 != 32'h00C3A500) $fatal(1, "MULTIBOOT_ADDR reads %08x", v32);
            write32(24'h000018, 32'h47525048);            // wrong key
            tx[0] = 8'h49; tx[1] = 8'h50; host_write(24'h000018, 2);   // key split over two transactions
            tx[0] = 8'h52; tx[1] = 8'h47; host_write(24'h00001A, 2);
            repeat (40) @(posedge clk);
            if (icap_iprogs != 0) $fatal(1, "REBOOT: IPROG issued without the whole key");
            write32(24'h000018, 32'h47525049);
            repeat (40) @(posedge clk);
            if (icap_iprogs != 1 || icap_errors != 0 || icap_wbstar != 32'h00C3A500)
                $fatal(1, "REBOOT: ICAPE2 saw %0d IPROG, %0d errors, WBSTAR %08x (expected 1, 0, 00c3a500)",
                       icap_iprogs, icap_errors, icap_wbstar);
            $display("REBOOT: IPROG through ICAPE2 with WBSTAR = %08x, wrong and split keys ignored", icap_wbstar);
        end
        $display("cycles per inference: %0d (max %0d), W=%0d F=%0d d=%0d H=%0d N=%0d P=%0d LANES=%0d, %s",
                 first_cycles, max_cycles, WINDOW, FEATURES, D_MODEL, HEADS, LAYERS, HORIZON, LANES,
                 (SPI != 0) ? "SPI pins" : "byte bus");
        $display("%0d passed, %0d failed", passed, failed);
        if (failed != 0 || passed == 0) $fatal(1, "vectors failed");
        $finish;
    end

    initial begin
        #(64'd2_000_000_000);
        $fatal(1, "timeout");
    end
endmodule
`default_nettype wire
