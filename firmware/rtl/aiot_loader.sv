// aiot_loader: VERIFY_PARAMS (docs/register-map.md §3.1, §6). Computes the CRC-32 of PARAM
// memory [0, PARAM_LENGTH), checks the image header against the synthesized shape, then copies
// the tables and tensors into the engine's memories in the layout the lanes read:
// weights and biases lane-interleaved, pe into its activation region, the EXP tables.
// Image format 2 (contract v2) appends the skip path: activations head and skip, the weight
// skip.weight, requants skip and output, tensors skip.weight [P, W*F] and skip.bias [P]; `skip`
// tells the engine to run steps 16-17. A format 1 image loads exactly as before.
`resetall
`default_nettype none
module aiot_loader #(
    parameter int WINDOW = 24,        // W
    parameter int FEATURES = 1,       // F
    parameter int D_MODEL = 16,       // d
    parameter int HEADS = 1,          // H
    parameter int LAYERS = 1,         // N
    parameter int HORIZON = 1,        // P
    parameter int LANES = 16,         // engine lanes (memory word width in elements)
    parameter int PARAM_WORDS = 2048, // PARAM memory capacity in 32-bit words
    parameter int A_PE = 24,          // engine ACT word base of pe
    localparam int L = LANES,
    localparam int CBD = (D_MODEL + L - 1) / L,
    localparam int FFN = 4 * D_MODEL,
    localparam int NACT = 6 + 13 * LAYERS,
    localparam int NWZ = 2 + 8 * LAYERS,
    localparam int NRQ = 4 + 12 * LAYERS,
    localparam int NT = 5 + 17 * LAYERS,
    localparam int PW = $clog2(PARAM_WORDS),
    localparam int BW = PW + 3,            // byte offsets and counts up to PARAM_WORDS * 4 (inclusive)
    localparam int LW = (LANES > 1) ? $clog2(LANES) : 1
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic        start,            // pulse
    input  wire logic        abort,            // pulse: stop (result invalid)
    input  wire logic [31:0] length,           // PARAM_LENGTH
    input  wire logic [31:0] expected_crc,
    output      logic        busy,
    output      logic        done,             // pulse
    output      logic        ok,               // with done
    output      logic [7:0]  err_code,         // with done: 0x03 CRC, 0x04 header/shape
    output      logic [31:0] crc,              // PARAM_CRC
    // PARAM memory read port (1-cycle latency)
    output      logic [PW-1:0] p_raddr,
    input  wire logic [31:0]   p_rdata,
    // engine load ports
    output      logic          ld_act_we, ld_wm_we, ld_bm_we, ld_exp_we,
    output      logic [15:0]   ld_addr,
    output      logic [L-1:0]  ld_lane,
    output      logic [31:0]   ld_data,
    output      logic          ld_qact_we, ld_qrq_we,
    output      logic [7:0]    ld_qidx,
    output      logic [39:0]   ld_qdata,
    output      logic          skip            // the image is format 2 (held until the next load)
);
    initial begin
        if (PARAM_WORDS < 16) $error("PARAM_WORDS too small (instance %m)");
        if (NT > 255 || NACT > 255) $error("too many layers for the loader tables (instance %m)");
    end

    typedef enum logic [3:0] {LD_IDLE, LD_CRC, LD_HDR, LD_ACT, LD_WZ, LD_RQ, LD_DIR, LD_TEN, LD_NEXT, LD_FIN} ld_t;
    ld_t ld;

    // Offsets and counts are kept only as wide as PARAM memory: every header offset, the image
    // total and each tensor's end are checked against PARAM_LENGTH (<= capacity) before use.
    logic [BW-1:0] b;               // byte counter (CRC) / element counter
    logic        rq;                // a read was issued (address register loads now)
    logic        rv;                // read data valid this cycle (two cycles after the issue)
    logic [1:0]  rbq, rb;           // byte lane of the read in flight
    logic [BW-1:0] h_total;         // header fields kept after the check
    logic [PW-1:0] h_act, h_wt, h_rq, h_dir;   // (word addresses)
    logic        hbad;
    logic        hv2;               // header word 2 says format 2 (skip path)
    assign skip = hv2;
    // expected header words (§6.1); the offsets (words 3, 8, 10, 12, 14) are checked separately
    function automatic logic hdr_free(input logic [3:0] k);
        hdr_free = (k == 4'd3) || (k == 4'd8) || (k == 4'd10) || (k == 4'd12) || (k == 4'd14);
    endfunction
    // (word 2, the format, is checked on its own: 1 or 2; the counts depend on it)
    function automatic logic [31:0] hdr_expect(input logic [3:0] k, input logic [31:0] len, input logic v2);
        unique case (k)
            4'd0: hdr_expect = 32'h544F4941;             // "AIOT"
            4'd1: hdr_expect = 32'h314D5250;             // "PRM1"
            4'd4: hdr_expect = {16'(FEATURES), 16'(WINDOW)};
            4'd5: hdr_expect = {16'(HEADS), 16'(D_MODEL)};
            4'd6: hdr_expect = {16'(FFN), 16'(LAYERS)};
            4'd7: hdr_expect = {16'd0, 16'(HORIZON)};
            4'd9: hdr_expect = 32'(NACT) + (v2 ? 32'd2 : 32'd0);
            4'd11: hdr_expect = 32'(NWZ) + (v2 ? 32'd1 : 32'd0);
            4'd13: hdr_expect = 32'(NRQ) + (v2 ? 32'd2 : 32'd0);
            4'd15: hdr_expect = 32'(NT) + (v2 ? 32'd2 : 32'd0);
            default: hdr_expect = len;
        endcase
    endfunction
    logic [4:0]  hi;
    logic [31:0] crc_r, crc_n;
    logic [7:0]  crc_byte;
    logic        bad;               // header or count mismatch seen
    aiot_crc32 u_crc (.crc_in(crc_r), .data(crc_byte), .crc_out(crc_n));
    always_comb crc_byte = p_rdata[8*rb +: 8];

    // tensor walk state
    logic [7:0]  ti;                // tensor index
    logic [3:0]  layer;
    logic [4:0]  slot;              // 0..16 inside a layer, or a global tensor
    logic [31:0] t_off;
    logic [15:0] t_cnt, e;          // element counts (checked equal to the shape's, < 2^16)
    logic [BW-1:0] ba;
    logic [1:0]  kind;              // 0 weight (i8) 1 bias (i32) 2 pe (i16) 3 exp (u16)
    logic [15:0] kdim;              // weight K (columns)
    logic [31:0] expect_cnt;
    logic [15:0] wptr, bptr, wrow, kcnt, jl, pe_t, pe_c;
    logic [15:0] e_layer_base, ep;
    localparam int WZW = $clog2(NWZ + 1);
    logic [7:0]  wz [NWZ + 1];          // weight zero points (weights are stored centered)
    logic [7:0]  widx;              // weight tensor index
    logic signed [15:0] zpe;        // zero point of pe (pe is stored centered)
    logic [1:0]  dstep;             // directory entry: 0 issue, 1 offset, 2 count
    logic [31:0] rq_lo;
    logic        rq_second;

    // what tensor ti is (tensor order of §6.4)
    always_comb begin
        kind = 2'd0; kdim = 16'(D_MODEL); expect_cnt = 32'(D_MODEL * D_MODEL);
        if (ti == 8'd0) begin kind = 2'd0; kdim = 16'(FEATURES); expect_cnt = 32'(D_MODEL * FEATURES); end
        else if (ti == 8'd1) begin kind = 2'd1; expect_cnt = 32'(D_MODEL); end
        else if (ti == 8'd2) begin kind = 2'd2; expect_cnt = 32'(WINDOW * D_MODEL); end
        else if (32'(ti) == NT - 2) begin kind = 2'd0; expect_cnt = 32'(HORIZON * D_MODEL); end
        else if (32'(ti) == NT - 1) begin kind = 2'd1; expect_cnt = 32'(HORIZON); end
        else if (32'(ti) == NT) begin kind = 2'd0; kdim = 16'(WINDOW * FEATURES); expect_cnt = 32'(HORIZON * WINDOW * FEATURES); end
        else if (32'(ti) == NT + 1) begin kind = 2'd1; expect_cnt = 32'(HORIZON); end
        else begin
            unique case (slot)
                5'd0, 5'd2, 5'd4, 5'd6: begin kind = 2'd0; expect_cnt = 32'(D_MODEL * D_MODEL); end
                5'd1, 5'd3, 5'd5, 5'd7, 5'd10, 5'd14, 5'd16: begin kind = 2'd1; expect_cnt = 32'(D_MODEL); end
                5'd8: begin kind = 2'd3; expect_cnt = 32'd1 << exp_bits; end
                5'd9, 5'd15: begin kind = 2'd0; kdim = 16'd1; expect_cnt = 32'(D_MODEL); end
                5'd11: begin kind = 2'd0; expect_cnt = 32'(FFN * D_MODEL); end
                5'd12: begin kind = 2'd1; expect_cnt = 32'(FFN); end
                5'd13: begin kind = 2'd0; kdim = 16'(FFN); expect_cnt = 32'(D_MODEL * FFN); end
                default: begin kind = 2'd1; expect_cnt = 32'(D_MODEL); end
            endcase
        end
    end
    // bits of layers.l.scores, from the activation table (needed for the EXP table size)
    logic [4:0] sbits [16];
    logic [4:0] exp_bits;
    always_comb exp_bits = sbits[layer];

    // element of the current read, sign-extended by kind
    logic [31:0] elem;
    always_comb begin
        unique case (kind)
            2'd0: elem = 32'($signed(p_rdata[8*rb +: 8]));
            2'd1: elem = p_rdata;
            2'd2: elem = 32'($signed(p_rdata[16*rb[1] +: 16]));
            default: elem = {16'd0, p_rdata[16*rb[1] +: 16]};
        endcase
    end
    // centered weight (|w - z_w| < 2^8) and pe (16 bits, 17 centered), in their own widths
    logic signed [8:0]  wdiff;
    logic signed [16:0] pdiff;
    always_comb wdiff = 9'($signed(elem[7:0])) - 9'($signed(wz[WZW'(widx)]));
    always_comb pdiff = 17'($signed(elem[15:0])) - 17'(zpe);
    logic [1:0] esize_log;
    always_comb esize_log = (kind == 2'd0) ? 2'd0 : (kind == 2'd1) ? 2'd2 : 2'd1;

    always_ff @(posedge clk) begin
        done <= 1'b0;
        ld_act_we <= 1'b0; ld_wm_we <= 1'b0; ld_bm_we <= 1'b0; ld_exp_we <= 1'b0;
        ld_qact_we <= 1'b0; ld_qrq_we <= 1'b0;
        rq <= 1'b0;
        rv <= rq; rb <= rbq;
        if (rst || abort) begin
            ld <= LD_IDLE; busy <= 1'b0;
        end else begin
            unique case (ld)
                LD_IDLE: if (start) begin
                    busy <= 1'b1; ld <= LD_CRC; b <= '0; crc_r <= 32'hFFFFFFFF; bad <= 1'b0;
                    if (length > 32'(PARAM_WORDS * 4) || length < 32'd64) bad <= 1'b1;
                end
                LD_CRC: begin
                    if (rv) crc_r <= crc_n;
                    if (32'(b) < length && 32'(b) < 32'(PARAM_WORDS * 4)) begin
                        p_raddr <= PW'(b >> 2); rbq <= b[1:0]; rq <= 1'b1; b <= b + 1'b1;
                    end else if (!rv && !rq) begin
                        crc <= ~crc_r;
                        if (~crc_r != expected_crc) begin
                            ld <= LD_FIN; ok <= 1'b0; err_code <= 8'h03;
                        end else if (bad) begin
                            ld <= LD_FIN; ok <= 1'b0; err_code <= 8'h04;
                        end else begin
                            ld <= LD_HDR; hi <= '0; b <= '0; hbad <= 1'b0;
                        end
                    end
                end
                LD_HDR: begin
                    // each header word is checked as it arrives; only the offsets are kept
                    if (rv) begin
                        hi <= hi + 5'd1;
                        if (hi[3:0] == 4'd2) begin
                            hv2 <= (p_rdata == 32'h00400002);
                            if (p_rdata != 32'h00400001 && p_rdata != 32'h00400002) hbad <= 1'b1;   // format 1 or 2, header 64 bytes
                        end else if (p_rdata != hdr_expect(hi[3:0], length, hv2) && !hdr_free(hi[3:0])) hbad <= 1'b1;
                        unique case (hi[3:0])
                            4'd3: begin h_total <= BW'(p_rdata); if (p_rdata > length) hbad <= 1'b1; end
                            4'd8: h_act <= PW'(p_rdata >> 2);
                            4'd10: h_wt <= PW'(p_rdata >> 2);
                            4'd12: h_rq <= PW'(p_rdata >> 2);
                            4'd14: h_dir <= PW'(p_rdata >> 2);
                            default: ;
                        endcase
                        if (hdr_free(hi[3:0]) && hi[3:0] != 4'd3 && (p_rdata[1:0] != 2'd0 || p_rdata > length)) hbad <= 1'b1;
                    end
                    if (32'(b) < 32'd16) begin p_raddr <= PW'(b); rq <= 1'b1; b <= b + 1'b1; end
                    else if (!rv && !rq) begin
                        if (hbad) begin
                            ld <= LD_FIN; ok <= 1'b0; err_code <= 8'h04;
                        end else begin
                            ld <= LD_ACT; b <= '0; e <= '0;
                        end
                    end
                end
                LD_ACT: begin
                    if (rv) begin
                        ld_qact_we <= 1'b1; ld_qidx <= 8'(e); ld_qdata <= {19'd0, p_rdata[4:0], p_rdata[31:16]};
                        if (e == 16'd2) zpe <= p_rdata[31:16];
                        if (p_rdata[7:0] < 8'd2 || p_rdata[7:0] > 8'd16) bad <= 1'b1;
                        for (int l = 0; l < LAYERS; l++)
                            if (32'(e) == 4 + 13 * l + 3) begin
                                sbits[l] <= p_rdata[4:0];
                                if (p_rdata[7:0] > 8'd8) bad <= 1'b1;
                            end
                        e <= e + 16'd1;
                    end
                    if (32'(b) < NACT + (hv2 ? 2 : 0)) begin p_raddr <= h_act + PW'(b); rq <= 1'b1; b <= b + 1'b1; end
                    else if (!rv && !rq) begin ld <= LD_WZ; b <= '0; e <= '0; end
                end
                LD_WZ: begin
                    if (rv) begin
                        wz[WZW'(e)] <= p_rdata[23:16];
                        e <= e + 16'd1;
                    end
                    if (32'(b) < NWZ + (hv2 ? 1 : 0)) begin p_raddr <= h_wt + PW'(b); rq <= 1'b1; b <= b + 1'b1; end
                    else if (!rv && !rq) begin ld <= LD_RQ; b <= '0; e <= '0; rq_second <= 1'b0; end
                end
                LD_RQ: begin
                    if (rv) begin
                        rq_second <= ~rq_second;
                        if (!rq_second) rq_lo <= p_rdata;
                        else begin
                            ld_qrq_we <= 1'b1; ld_qidx <= 8'(e); ld_qdata <= {2'd0, p_rdata[5:0], rq_lo};
                            if (p_rdata[7:0] > 8'd40) bad <= 1'b1;
                            e <= e + 16'd1;
                        end
                    end
                    if (32'(b) < 2 * (NRQ + (hv2 ? 2 : 0))) begin p_raddr <= h_rq + PW'(b); rq <= 1'b1; b <= b + 1'b1; end
                    else if (!rv && !rq) begin
                        ld <= LD_DIR; ti <= '0; layer <= '0; slot <= '0; dstep <= '0;
                        wptr <= '0; bptr <= '0; widx <= '0;
                    end
                end
                LD_DIR: begin
                    // read the two words of directory entry ti: offset, then element count
                    unique case (dstep)
                        2'd0: begin p_raddr <= h_dir + PW'({ti, 1'b0}); rq <= 1'b1; dstep <= 2'd1; end
                        2'd1: if (rv) begin
                            t_off <= p_rdata; p_raddr <= h_dir + PW'({ti, 1'b1}); rq <= 1'b1; dstep <= 2'd2;
                        end
                        default: if (rv) begin
                            t_cnt <= p_rdata[15:0]; dstep <= 2'd0;
                            // the end is computed with the expected count (any other count fails anyway)
                            if (p_rdata != expect_cnt || t_off[1:0] != 0 || t_off[31:BW] != '0 ||
                                (expect_cnt << esize_log) >= 32'(PARAM_WORDS * 4) ||
                                (BW+1)'(t_off[BW-1:0]) + (BW+1)'(expect_cnt << esize_log) > (BW+1)'(h_total)) begin
                                ld <= LD_FIN; ok <= 1'b0; err_code <= 8'h04;
                            end else begin
                                ld <= LD_TEN; e <= '0; ba <= BW'(t_off);
                                wrow <= (kind == 2'd1) ? bptr : wptr; kcnt <= '0; jl <= '0; pe_t <= '0; pe_c <= '0; ep <= '0;
                                e_layer_base <= 16'(layer) * 16'd256;
                            end
                        end
                    endcase
                end
                LD_TEN: begin
                    // one element a cycle: read, then write to its engine memory
                    if (e < t_cnt) begin
                        p_raddr <= PW'(ba >> 2); rbq <= ba[1:0]; rq <= 1'b1;
                        ba <= ba + (BW'(1) << esize_log); e <= e + 16'd1;
                    end
                    if (rv) begin
                        ep <= ep + 16'd1;
                        ld_data <= elem;
                        ld_lane <= '0;
                        unique case (kind)
                            2'd0: begin
                                ld_wm_we <= 1'b1; ld_addr <= wrow + kcnt; ld_lane[LW'(jl)] <= 1'b1;
                                ld_data <= 32'(wdiff);
                                if (kcnt + 16'd1 == kdim) begin
                                    kcnt <= '0;
                                    if (32'(jl) == L - 1) begin jl <= '0; wrow <= wrow + kdim; end
                                    else jl <= jl + 16'd1;
                                end else kcnt <= kcnt + 16'd1;
                            end
                            2'd1: begin
                                ld_bm_we <= 1'b1; ld_addr <= wrow; ld_lane[LW'(jl)] <= 1'b1;
                                if (32'(jl) == L - 1) begin jl <= '0; wrow <= wrow + 16'd1; end
                                else jl <= jl + 16'd1;
                            end
                            2'd2: begin
                                ld_act_we <= 1'b1; ld_addr <= 16'(A_PE) + pe_t * 16'(CBD) + pe_c / 16'(L);
                                ld_data <= 32'(pdiff);
                                ld_lane[32'(pe_c) % L] <= 1'b1;
                                if (pe_c + 16'd1 == 16'(D_MODEL)) begin pe_c <= '0; pe_t <= pe_t + 16'd1; end
                                else pe_c <= pe_c + 16'd1;
                            end
                            default: begin
                                ld_exp_we <= 1'b1; ld_addr <= e_layer_base + ep;
                                if (ep == 16'd0 && elem != 32'd32768) bad <= 1'b1;   // EXP[0] = 2^15
                            end
                        endcase
                    end
                    if (e == t_cnt && !rv && !rq) ld <= LD_NEXT;
                end
                LD_NEXT: begin
                    // advance the running pointers past this tensor
                    if (kind == 2'd0) begin wptr <= wrow + ((jl != 0) ? kdim : 16'd0); widx <= widx + 8'd1; end
                    if (kind == 2'd1) bptr <= wrow + ((jl != 0) ? 16'd1 : 16'd0);
                    if (32'(ti) == (hv2 ? NT + 1 : NT - 1)) begin
                        ld <= LD_FIN; ok <= !bad; err_code <= bad ? 8'h04 : 8'h00;
                    end else begin
                        ti <= ti + 8'd1;
                        ld <= LD_DIR; dstep <= '0;
                        if (ti >= 8'd3 && 32'(ti) < NT - 2) begin
                            if (slot == 5'd16) begin slot <= '0; layer <= layer + 4'd1; end
                            else slot <= slot + 5'd1;
                        end
                    end
                end
                LD_FIN: begin
                    busy <= 1'b0; done <= 1'b1; ld <= LD_IDLE;
                end
                default: ld <= LD_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
