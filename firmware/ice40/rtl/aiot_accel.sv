// aiot_accel (iCE40UP5K core): the register map of docs/register-map.md behind a byte bus, the
// same registers, commands and RESULT block as firmware/rtl/aiot_accel.sv, around the iCE40 loader
// and engine. PARAM is one SPRAM (16-bit words, byte writes) shared by the host, the loader and the
// engine: a host access to PARAM wins the port and stalls the engine for that cycle.
// LANES and POST_LANES are accepted for the common test bench and ignored (one multiplier).
// Bus: one byte per bus_we/bus_re pulse; read data is valid two cycles after bus_re.
// bus_end marks the end of a transaction (ACC_CS_N rising): CONTROL commands act there.
`resetall
`default_nettype none
module aiot_accel #(
    parameter int WINDOW = 24,            // W
    parameter int FEATURES = 1,           // F
    parameter int D_MODEL = 16,           // d
    parameter int HEADS = 1,              // H
    parameter int LAYERS = 1,             // N
    parameter int HORIZON = 1,            // P
    parameter int LANES = 16,             // MAC lanes
    parameter int POST_LANES = 1,         // epilogue units
    parameter int PARAM_BYTES = 32768,    // PARAM memory capacity (multiple of 4, at most one SPRAM)
    parameter int CLOCK_HZ = 100_000_000, // reported in CLOCK_HZ
    parameter int REBOOT_ICAP = 0,        // must be 0: no ICAP on the iCE40 (REBOOT ignored)
    localparam int PW = $clog2(PARAM_BYTES / 4),
    localparam int NIN = WINDOW * FEATURES,
    localparam int IW = (NIN > 1) ? $clog2(NIN) : 1,
    localparam int RES_BYTES = 16 + 2 * HORIZON + 4
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic        bus_we,
    input  wire logic        bus_re,
    input  wire logic [23:0] bus_addr,
    input  wire logic [7:0]  bus_wdata,
    output      logic [7:0]  bus_rdata,
    input  wire logic        bus_end,
    output      logic        busy_pin
);
    initial begin
        if (PARAM_BYTES % 4 != 0 || PARAM_BYTES < 1024 || PARAM_BYTES > 32768)
            $error("PARAM_BYTES must be a multiple of 4 in 1 .. 32 KiB (one SPRAM) (instance %m)");
        if (2 * NIN > 8192) $error("INPUT window larger than its 8 KiB region (instance %m)");
    end

    localparam logic [31:0] ID = 32'h544F4941, VERSION = 32'h00010000;

    // ---------------------------------------------------------------- state
    logic        st_busy, st_done, st_error, st_valid;
    logic [7:0]  err_code;
    logic [31:0] reboot_w;          // bytes written to REBOOT in this transaction
    /* verilator lint_off UNUSEDSIGNAL */  // unused when the part has no ICAP (REBOOT_ICAP = 0)
    logic        reboot_go;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [31:0] sequence_r, multiboot, param_length, param_expected, cycles_r;
    // MODEL_ID bytes: LUT RAM plus a written-since-clear bit per byte (a clear is one cycle)
    logic [31:0] mid_v;
    logic        mid_we;
    logic [7:0]  mid_rdata;
    logic        pend_start, pend_reset, pend_clear, pend_verify;
    logic [31:0] status;
    logic        ld_busy, ld_done, ld_ok, ld_dirty;
    logic [7:0]  ld_err;
    logic [31:0] ld_crc;
    always_comb status = {16'd0, err_code, 3'd0, ld_busy, st_valid, st_error, st_done, st_busy};
    assign busy_pin = st_busy;

    // ---------------------------------------------------------------- PARAM memory
    logic        is_param, is_input;
    // address decode on bit fields (no 24-bit comparators: carry chains cost logic cells here)
    always_comb is_param = bus_addr[23:16] == 8'h01 && 32'(bus_addr[15:0]) < PARAM_BYTES;
    always_comb is_input = bus_addr[23:16] == 8'h00 && bus_addr[15:0] >= 16'h1000 && 32'(bus_addr[15:0]) < 32'h1000 + 2 * NIN;
    logic [15:0]   p_off;
    always_comb p_off = 16'(bus_addr - 24'h010000);
    logic        host_p, ld_re, eng_re, eng_en;
    logic [13:0] ld_paddr, eng_paddr, p_addr;
    logic [15:0] p_rdata;
    // port priority: host write, loader, host read, engine (stalled by any host access)
    always_comb begin
        host_p = is_param && (bus_we || bus_re);
        eng_en = !host_p;
        if (bus_we && is_param) p_addr = p_off[14:1];
        else if (ld_busy) p_addr = ld_paddr;
        else if (host_p) p_addr = p_off[14:1];
        else p_addr = eng_paddr;
    end
    ice40_spram u_param (.clk, .cs((bus_we && is_param) || (ld_busy && ld_re) || host_p || eng_re),
        .we(bus_we && is_param), .be({p_off[0], !p_off[0]}), .addr(p_addr), .wdata({2{bus_wdata}}),
        .rdata(p_rdata));

    // ---------------------------------------------------------------- INPUT window
    /* verilator lint_off UNUSEDSIGNAL */  // the INPUT memory uses the low address bits
    logic [15:0] in_raddr, in_rdata;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [15:0] i_off, eng_in_data;
    always_comb i_off = bus_addr[15:0] - 16'h1000;
    // two byte lanes of NIN entries (EBR), read one element a cycle by the engine's copy
    logic [7:0] in_lo [NIN], in_hi [NIN];
    always_ff @(posedge clk) begin
        if (bus_we && is_input && !i_off[0]) in_lo[IW'(i_off >> 1)] <= bus_wdata;
        if (bus_we && is_input && i_off[0]) in_hi[IW'(i_off >> 1)] <= bus_wdata;
        if (eng_en) in_rdata <= {in_hi[IW'(in_raddr)], in_lo[IW'(in_raddr)]};   // held while stalled
    end

    // ---------------------------------------------------------------- loader and engine
    logic        ld_start, eng_start, eng_abort, eng_done, eng_in_v;
    /* verilator lint_off UNUSEDSIGNAL */  // STATUS.BUSY also covers the RESULT CRC after the engine
    logic        eng_busy;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [HORIZON*16-1:0] eng_out;
    logic [15:0] o_act, o_wt, o_rq, o_dir;
    aiot_ice40_loader #(.WINDOW(WINDOW), .FEATURES(FEATURES), .D_MODEL(D_MODEL), .HEADS(HEADS), .LAYERS(LAYERS),
                        .HORIZON(HORIZON), .PARAM_BYTES(PARAM_BYTES)) u_loader (
        .clk, .rst, .start(ld_start), .length(param_length), .expected_crc(param_expected),
        .busy(ld_busy), .done(ld_done), .ok(ld_ok), .err_code(ld_err), .crc(ld_crc),
        .p_re(ld_re), .p_addr(ld_paddr), .p_rdata, .o_act, .o_wt, .o_rq, .o_dir);
    aiot_ice40_engine #(.WINDOW(WINDOW), .FEATURES(FEATURES), .D_MODEL(D_MODEL), .HEADS(HEADS), .LAYERS(LAYERS),
                        .HORIZON(HORIZON)) u_engine (
        .clk, .rst, .en(eng_en), .start(eng_start), .abort(eng_abort), .busy(eng_busy), .done(eng_done),
        .in_raddr, .in_rdata, .in_valid(eng_in_v), .in_data(eng_in_data),
        .p_re(eng_re), .p_addr(eng_paddr), .p_rdata, .h_act(o_act), .h_wt(o_wt), .h_rq(o_rq), .h_dir(o_dir),
        .out_q(eng_out));

    always_comb mid_we = bus_we && !is_param && bus_addr[23:5] == 19'd2;
    // MODEL_ID bytes in EBR (no LUT RAM on the iCE40): read with the bus address, so the byte is
    // there in the cycle the address reaches ra1, as the asynchronous read of the XC7S15 version
    logic [7:0] mid_mem [32];
    always_ff @(posedge clk) begin
        if (mid_we) mid_mem[bus_addr[4:0]] <= bus_wdata;
        mid_rdata <= mid_mem[bus_addr[4:0]];
    end

    // REBOOT: the iCE40 has no ICAPE2 (SB_WARMBOOT selects an icemulti image, another contract):
    // the register is written and ignored. (The block below, simulation only, gives the common test
    // bench's REBOOT probes a scope to resolve; the bench runs this core with REBOOT_ICAP = 0.)
`ifndef SYNTHESIS
    generate
        if (REBOOT_ICAP != 0) begin : g_icap
            /* verilator lint_off PINCONNECTEMPTY */
            aiot_icap u_icap (.clk, .rst, .go(1'b0), .wbstar(multiboot[23:0]), .busy());
            /* verilator lint_on PINCONNECTEMPTY */
        end
    endgenerate
`endif
    // ---------------------------------------------------------------- RESULT block
    logic [31:0] res_status, res_seq, res_incrc, res_cycles, res_crc;
    logic [15:0] res_out [HORIZON];
    logic [31:0] in_crc;
    logic [7:0]  in_hi_byte;
    logic        in_hi_pend;         // the high byte of the element latched last cycle is next

    function automatic logic [7:0] byte_of(input logic [31:0] w, input logic [1:0] k);
        byte_of = w[8*k +: 8];
    endfunction
    // byte k of the RESULT block; k >= 16 + 2P reads the RESULT_CRC field
    function automatic logic [7:0] result_byte(input logic [7:0] k);
        logic [15:0] o;
        int oi;
        oi = (32'(k) - 16) / 2;
        if (oi < 0 || oi >= HORIZON) oi = 0;
        o = res_out[oi];
        if (k < 8'd4) result_byte = byte_of(res_status, k[1:0]);
        else if (k < 8'd8) result_byte = byte_of(res_seq, k[1:0]);
        else if (k < 8'd12) result_byte = byte_of(res_incrc, k[1:0]);
        else if (k < 8'd16) result_byte = byte_of(res_cycles, k[1:0]);
        else if (32'(k) < 16 + 2 * HORIZON) result_byte = k[0] ? o[15:8] : o[7:0];
        else result_byte = byte_of(res_crc, 2'(32'(k) - (16 + 2 * HORIZON)));
    endfunction
    logic [23:0] ra1;              // address of the bus read in flight
    logic [7:0] res_byte;          // byte res_idx of the RESULT block (before its CRC field)
    logic [7:0] res_idx;
    // one byte selector serves the RESULT CRC (while BUSY) and bus reads (after it); computed
    // inside the clocked processes so every simulator sees current register values
    logic [7:0] rbyte;
    always_comb rbyte = result_byte(res_crc_run ? res_idx : ra1[7:0]);
    assign res_byte = rbyte;
    // one CRC-32 byte step serves INPUT_CRC (while the engine copies the window, one element every
    // two cycles) and RESULT_CRC (after the engine): never at the same time
    logic [31:0] rc_cur, rc_next;
    aiot_crc32 u_crc (.crc_in(res_crc_run ? rc_cur : in_crc),
                      .data(res_crc_run ? res_byte : in_hi_pend ? in_hi_byte : eng_in_data[7:0]), .crc_out(rc_next));
    logic        res_crc_run;

    // ---------------------------------------------------------------- control
    always_ff @(posedge clk) begin
        ld_start <= 1'b0; eng_start <= 1'b0; eng_abort <= 1'b0; reboot_go <= 1'b0;
        if (rst) begin
            reboot_w <= '0;
            st_busy <= 1'b0; st_done <= 1'b0; st_error <= 1'b0; st_valid <= 1'b0; err_code <= '0;
            sequence_r <= '0; multiboot <= '0; param_length <= '0; param_expected <= '0; cycles_r <= '0;
            pend_start <= 1'b0; pend_reset <= 1'b0; pend_clear <= 1'b0; pend_verify <= 1'b0;
            ld_dirty <= 1'b0; res_crc_run <= 1'b0;
            mid_v <= '0;
            res_status <= '0; res_seq <= '0; res_incrc <= '0; res_cycles <= '0; res_crc <= '0;
            for (int k = 0; k < HORIZON; k++) res_out[k] <= '0;
        end else begin
            // ---- bus writes
            if (bus_we) begin
                if (is_param) begin
                    st_valid <= 1'b0;
                    mid_v <= '0;
                    if (ld_busy) ld_dirty <= 1'b1;
                end else if (bus_addr[23:8] == 16'd0) begin
                    unique case (bus_addr[7:2])
                        6'h02: if (bus_addr[1:0] == 2'd0) begin
                            if (bus_wdata[0]) pend_start <= 1'b1;
                            if (bus_wdata[1]) pend_reset <= 1'b1;
                            if (bus_wdata[2]) pend_clear <= 1'b1;
                            if (bus_wdata[3]) pend_verify <= 1'b1;
                        end
                        6'h05: if (bus_addr[1:0] != 2'd3) multiboot[8*bus_addr[1:0] +: 8] <= bus_wdata;
                        6'h06: reboot_w[8*bus_addr[1:0] +: 8] <= bus_wdata;
                        6'h08: param_length[8*bus_addr[1:0] +: 8] <= bus_wdata;
                        6'h09: param_expected[8*bus_addr[1:0] +: 8] <= bus_wdata;
                        default: ;
                    endcase
                    if (mid_we) mid_v[bus_addr[4:0]] <= 1'b1;
                end
            end
            // ---- commands, at the end of the transaction that wrote them
            if (bus_end) begin
                reboot_w <= '0;             // the key must arrive whole within one transaction
                if (reboot_w == 32'h47525049) reboot_go <= 1'b1;
                pend_start <= 1'b0; pend_reset <= 1'b0; pend_clear <= 1'b0; pend_verify <= 1'b0;
                if (pend_reset) begin
                    eng_abort <= 1'b1; res_crc_run <= 1'b0;
                    st_busy <= 1'b0; st_done <= 1'b0; st_error <= 1'b0; err_code <= '0; sequence_r <= '0;
                    res_status <= '0; res_seq <= '0; res_incrc <= '0; res_cycles <= '0; res_crc <= '0;
                    for (int k = 0; k < HORIZON; k++) res_out[k] <= '0;
                end else begin
                    if (pend_clear) begin st_error <= 1'b0; err_code <= '0; end
                    if (pend_verify && !ld_busy && !st_busy) begin
                        ld_start <= 1'b1; st_valid <= 1'b0; ld_dirty <= 1'b0;
                    end
                    if (pend_start) begin
                        if (st_busy) begin st_error <= 1'b1; err_code <= 8'h02; end
                        else if (!st_valid || ld_busy) begin st_error <= 1'b1; err_code <= 8'h01; end
                        else begin
                            eng_start <= 1'b1; st_busy <= 1'b1; st_done <= 1'b0;
                            sequence_r <= sequence_r + 32'd1; cycles_r <= '0;
                            in_crc <= 32'hFFFFFFFF;
                        end
                    end
                end
            end
            // ---- loader result
            if (ld_done) begin
                if (ld_ok && !ld_dirty) st_valid <= 1'b1;
                else if (!ld_ok) begin st_error <= 1'b1; err_code <= ld_err; end
            end
            // ---- inference
            if (st_busy) cycles_r <= cycles_r + 32'd1;
            in_hi_pend <= 1'b0;
            if (eng_in_v) begin in_crc <= rc_next; in_hi_byte <= eng_in_data[15:8]; in_hi_pend <= 1'b1; end
            if (in_hi_pend) in_crc <= rc_next;
            if (eng_done && st_busy) begin
                res_seq <= sequence_r; res_incrc <= ~in_crc; res_cycles <= cycles_r + 32'd1;
                res_status <= {status[31:2], 2'b10};          // DONE set, BUSY clear, as at completion
                for (int k = 0; k < HORIZON; k++) res_out[k] <= eng_out[16*k +: 16];
                res_crc_run <= 1'b1; res_idx <= '0; rc_cur <= 32'hFFFFFFFF;
            end
            if (res_crc_run) begin
                rc_cur <= rc_next; res_idx <= res_idx + 8'd1;
                if (32'(res_idx) == 16 + 2 * HORIZON - 1) begin
                    res_crc <= ~rc_next; res_crc_run <= 1'b0;
                    st_busy <= 1'b0; st_done <= 1'b1;
                end
            end
        end
    end

    // ---------------------------------------------------------------- bus reads (2-cycle latency)
    logic [7:0]  rd1;
    logic        rp1;
    function automatic logic [31:0] reg_word(input logic [5:0] a);
        unique case (a)
            6'h00: reg_word = ID;
            6'h01: reg_word = VERSION;
            6'h03: reg_word = status;
            6'h04: reg_word = sequence_r;
            6'h05: reg_word = multiboot;
            6'h07: reg_word = 32'd0;                                  // BOOT_STATUS: no multiboot fallback seen
            6'h08: reg_word = param_length;
            6'h09: reg_word = param_expected;
            6'h0A: reg_word = ld_crc;
            6'h0B: reg_word = 32'(PARAM_BYTES);
            6'h0C: reg_word = {16'(FEATURES), 16'(WINDOW)};
            6'h0D: reg_word = {8'(HORIZON), 8'(LAYERS), 8'(HEADS), 8'(D_MODEL)};
            6'h0E: reg_word = cycles_r;
            6'h0F: reg_word = 32'(CLOCK_HZ);
            default: reg_word = 32'd0;
        endcase
    endfunction
    function automatic logic [7:0] read_byte(input logic [23:0] a, input logic [7:0] rb);
        if (a[23:6] == 18'd0) read_byte = byte_of(reg_word(a[7:2]), a[1:0]);
        else if (a[23:5] == 19'd2) read_byte = mid_v[a[4:0]] ? mid_rdata : 8'd0;
        else if (a[23:8] == 16'h0030 && 32'(a[7:0]) < RES_BYTES) read_byte = rb;
        else read_byte = 8'd0;
    endfunction
    always_comb rd1 = read_byte(ra1, rbyte);
    always_ff @(posedge clk) begin
        ra1 <= bus_addr;
        rp1 <= bus_re && is_param && !ld_busy;
        bus_rdata <= rp1 ? p_rdata[8*ra1[0] +: 8] : rd1;
    end
endmodule
`default_nettype wire
