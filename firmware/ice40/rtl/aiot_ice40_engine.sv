// aiot_ice40_engine: the network of docs/arithmetic.md (contract v1) on one multiplier, for the
// iCE40UP5K. A microprogram (firmware/ice40/gen_prog.py, one op of 24 16-bit words per 32 ROM
// words, in EBR) lists the layer ops; the sequencer fetches an op and, word by word, reads its zero
// points, requant pair and tensor offsets straight from the parameter image in PARAM (SPRAM, no
// copy); then it runs
//   MM   for t < T, j < J: acc = bias? + sum_k (A - za)(B - zb); y = SAT(zy + RSHR(acc * m1, n)) (ReLU)
//   ADD  acc = (A - za) m1 + (B - zb) m2; y = SAT(zy + RSHR(acc, n))
//   SOFTMAX (E6) on rows of scores in place, END (outputs to the result).
// A is in ACT1, B in PARAM or ACT2 (three SPRAMs, so a MAC reads both operands in one cycle).
// One signed 32x17 multiplier (SB_MAC16s) serves the MACs, the requantization acc*m and softmax e*inv.
// en = 0 freezes the engine for a cycle (the host is using PARAM's single port): no read is lost.
`resetall
`default_nettype none
module aiot_ice40_engine #(
    parameter int WINDOW = 24,
    parameter int FEATURES = 1,
    parameter int D_MODEL = 16,
    parameter int HEADS = 1,
    parameter int LAYERS = 1,
    parameter int HORIZON = 1,
    localparam int NIN = WINDOW * FEATURES,
    localparam int NOPS = 5 + LAYERS * (10 + 3 * HEADS),
    localparam int RW = $clog2(NOPS * 32)
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic        en,
    input  wire logic        start,
    input  wire logic        abort,
    output      logic        busy,
    output      logic        done,
    output      logic [15:0] in_raddr,
    input  wire logic [15:0] in_rdata,
    output      logic        in_valid,        // in_data is window element (CRC), in order
    output      logic [15:0] in_data,
    output      logic        p_re,
    output      logic [13:0] p_addr,
    input  wire logic [15:0] p_rdata,
    input  wire logic [15:0] h_act, h_wt, h_rq, h_dir,   // table offsets, from the loader's check
    output      logic [HORIZON*16-1:0] out_q
);
    // the shapes this core holds (gen_prog.py refuses the same): activations in two SPRAMs of
    // 32 KiB, the microprogram in at most 16 EBR
    initial begin
        if (2 * (NIN + 10 * WINDOW * D_MODEL + WINDOW * WINDOW + D_MODEL + HORIZON) > 32768 ||
            2 * 4 * WINDOW * D_MODEL > 32768 || NOPS > 128)
            $error("shape too large for the iCE40 core's SPRAM/EBR (instance %m)");
    end
`ifndef AIOT_PROG
    initial $error("define AIOT_PROG as the microprogram file (firmware/ice40/gen_prog.py)");
`define AIOT_PROG "prog.hex"
`endif
    // ---------------------------------------------------------------- memories
    logic [15:0] rom [NOPS * 32];
    initial $readmemh(`AIOT_PROG, rom);
    logic [RW-1:0] rom_addr;
    logic [15:0] rom_q, a1_q, a2_q;
    always_ff @(posedge clk) if (en) rom_q <= rom[rom_addr];

    logic        a1_cs, a1_we, a2_cs, a2_we;
    logic [15:0] a1_ba, a2_ba, a1_wd, a2_wd;     // byte addresses
    ice40_spram u_act1 (.clk, .cs(a1_cs && en), .we(a1_we), .be(2'b11), .addr(a1_ba[14:1]), .wdata(a1_wd), .rdata(a1_q));
    ice40_spram u_act2 (.clk, .cs(a2_cs && en), .we(a2_we), .be(2'b11), .addr(a2_ba[14:1]), .wdata(a2_wd), .rdata(a2_q));

    // A stall (en = 0) reads nothing from the engine's own memories and the INPUT window, so
    // their outputs hold; PARAM's port may serve the host meanwhile, so its read data is held here
    logic en_q;
    logic [15:0] h_p, p_d, in_d, rom_d, a1_d, a2_d;
    always_ff @(posedge clk) begin
        en_q <= en;
        if (en_q) h_p <= p_rdata;
    end
    always_comb begin
        p_d = en_q ? p_rdata : h_p;   in_d = in_rdata;   rom_d = rom_q;   a1_d = a1_q;   a2_d = a2_q;
    end
    assign in_data = in_d;
    assign in_valid = en && st == S_CPY && cv1;

    // ---------------------------------------------------------------- op fields (gen_prog.py)
    logic [15:0] fld [15];             // ROM words 0 ..< 15 (4, 8, 11 load the pointers directly)
    logic        b_none;
    logic [1:0]  op;
    logic        f_relu, f_bias, f_bpar, f_bi8, f_bone, f_y2, f_zbw;
    always_comb begin
        op = fld[0][1:0]; f_relu = fld[0][2]; f_bias = fld[0][3]; f_bpar = fld[0][4]; f_bi8 = fld[0][5];
        f_bone = fld[0][6]; f_y2 = fld[0][7]; f_zbw = fld[0][8];
    end

    typedef enum logic [3:0] {S_IDLE, S_CPY, S_FETCH, S_BIAS, S_MAC, S_DRAIN, S_POST,
                              S_SMAX, S_SDEN, S_SDIV, S_SRD, S_END, S_NEXT} st_t;
    st_t st;
    logic [7:0]  pc;
    logic [4:0]  fi;                 // fetch word / read-list step
    logic signed [15:0] za, zb, zy;
    logic [4:0]  yb;
    logic [15:0] m1, m2;
    logic [5:0]  n;
    logic [10:0] t, j, k;             // loop counters: T, J, K < 2048 (gen_prog.py)
    logic [15:0] ci;
    logic [15:0] a_t, a_tj, a_p, b_t, b_j, b_p, y_t, y_p, bias_b, bias_p, b_base;
    logic [1:0]  bs;                 // bias read step
    logic [2:0]  pp;                 // post step
    logic        sm;                 // the post serves softmax
    logic signed [34:0] acc;
    logic signed [31:0] mul_a;
    logic signed [16:0] mul_b;
    logic signed [48:0] prod;
    always_comb prod = mul_a * mul_b;
    // MAC pipeline: v1 data from memory, v2 operands (product accumulated), v3 unused
    logic        v1, v2, v3, k0_1, blo_1, cv1, cph;
    logic [15:0] ci_1;
    logic        sv1, sv2, smx_first;   // softmax pipelines
    logic signed [15:0] mx;
    logic [23:0] den;
    logic [24:0] rem;
    logic [5:0]  dc;
    logic        nbit;               // bit 45 - dc of the dividend R * 2^30, R = 2^yb - 1
    always_comb nbit = dc < 6'd16 && 6'(yb) + dc > 6'd15;

    // prologue reads of an op (bytes): table base + (index from the ROM << entry size | field offset)
    logic [15:0] pro_ba, pro_base;
    logic        pro_q;                  // 8-byte entries (directory, requant table), else 4
    logic [2:0]  pro_off;
    always_comb begin
        pro_q = 1'b0; pro_off = 3'd0; pro_base = h_act;
        unique case (fi)
            5'd16, 5'd17: begin pro_base = h_dir; pro_q = 1'b1; end     // B tensor, bias tensor
            5'd18: pro_off = 3'd2;                                       // za
            5'd19: begin pro_base = f_zbw ? h_wt : h_act; pro_off = 3'd2; end   // zb
            5'd20: ;                                                     // y bits
            5'd21: pro_off = 3'd2;                                       // zy
            5'd22: begin pro_base = h_rq; pro_q = 1'b1; end              // m1
            5'd23: begin pro_base = h_rq; pro_q = 1'b1; pro_off = 3'd2; end   // m2
            default: begin pro_base = h_rq; pro_q = 1'b1; pro_off = 3'd4; end // n
        endcase
        pro_ba = pro_base + ((pro_q ? {rom_d[12:0], 3'b0} : {rom_d[13:0], 2'b0}) | 16'(pro_off));
    end

    // B operand of the MAC pipeline, and the centered operands (17 bits)
    logic signed [15:0] braw;
    logic signed [16:0] da, db;
    always_comb begin
        da = 17'($signed(a1_d)) - 17'(za);
        db = 17'(braw) - 17'(zb);
    end
    always_comb begin
        if (!f_bpar) braw = a2_d;
        else if (f_bi8) braw = 16'($signed(blo_1 ? p_d[15:8] : p_d[7:0]));
        else braw = p_d;
    end

    // ---------------------------------------------------------------- post: SAT(z + RSHR(v, n)), ReLU
    // RSHR(v, n) = ((v - [v < 0]) >>> (n - 1) + 1) >>> 1 for n >= 1 (half away from zero, no
    // magnitudes; |v| < 2^47 for acc*m, the addition sum and e*inv). The n - 1 shift is sequential,
    // 4 or 1 bits a cycle, instead of a 49-bit barrel shifter.
    localparam logic signed [48:0] PCLAMP = 49'sh20000, NCLAMP = 49'sh1_FFFF_FFFE_0000;
    logic signed [48:0] pv, pr, sh;
    logic [5:0]  pn, shc;
    logic        rnd_en;
    logic signed [18:0] prnd;        // RSHR clamped to +-2^17 (saturates any 16-bit result)
    logic signed [19:0] psum;
    logic signed [15:0] pz, plo, phi, py, py_c;
    always_comb begin
        pv = (op == 2'd1 && !sm) ? 49'(acc) : prod;
        pn = sm ? 6'd30 : n;
        pr = rnd_en ? ((sh + 49'sd1) >>> 1) : sh;
    end
    always_comb begin
        phi = ~plo;                          // hi(b) = -lo(b) - 1
        pz = sm ? plo : zy;
        psum = 20'(pz) + 20'(prnd);
        if (psum > 20'(phi)) py_c = phi;
        else if (psum < 20'(plo)) py_c = plo;
        else py_c = 16'(psum);
        if (f_relu && !sm && py_c < zy) py_c = zy;
    end

    always_ff @(posedge clk) plo <= -(16'sd1 <<< (yb - 5'd1));

    // ---------------------------------------------------------------- memory ports
    always_comb begin
        a1_cs = 1'b0; a1_we = 1'b0; a1_ba = a_p; a1_wd = py;
        a2_cs = 1'b0; a2_we = 1'b0; a2_ba = b_p; a2_wd = py;
        p_re = 1'b0; p_addr = b_p[14:1];
        in_raddr = ci;
        rom_addr = RW'({pc, fi});
        unique case (st)
            S_CPY: if (cv1) begin a1_cs = 1'b1; a1_we = 1'b1; a1_ba = {ci_1[14:0], 1'b0}; a1_wd = in_d; end
            S_FETCH: begin p_re = fi >= 5'd16 && fi <= 5'd24; p_addr = pro_ba[14:1]; end
            S_BIAS: begin p_re = f_bias && bs != 2'd2; p_addr = bias_p[14:1] + ((bs == 2'd1) ? 14'd1 : 14'd0); end
            S_MAC: begin a1_cs = 1'b1; a2_cs = !f_bpar; p_re = f_bpar; end
            S_SMAX: a1_cs = k < fld[2][10:0];
            S_SDEN: a1_cs = k < fld[2][10:0];
            S_SRD: a1_cs = (bs == 2'd0);
            S_END: a1_cs = k < fld[2][10:0];
            S_POST: if (pp == 3'd4) begin
                if (sm || !f_y2) begin a1_cs = 1'b1; a1_we = 1'b1; a1_ba = sm ? a_p : y_p; end
                else begin a2_cs = 1'b1; a2_we = 1'b1; a2_ba = y_p; end
            end
            default: ;
        endcase
        // the EXP table read of the softmax pipelines: index mx - S of the score read last cycle
        if ((st == S_SDEN && sv1) || (st == S_SRD && bs == 2'd1)) begin
            p_re = 1'b1; p_addr = 14'((b_base + {15'(mx - $signed(a1_d)), 1'b0}) >> 1);
        end
    end

    // ---------------------------------------------------------------- sequencer
    always_ff @(posedge clk) begin
        done <= 1'b0;
        if (rst || abort) begin
            st <= S_IDLE; busy <= 1'b0; v1 <= 1'b0; v2 <= 1'b0; v3 <= 1'b0;
            cv1 <= 1'b0; sv1 <= 1'b0; sv2 <= 1'b0;
        end else if (en) begin
            // MAC pipeline (any state; only S_MAC feeds it)
            v1 <= 1'b0; v2 <= v1; v3 <= v2;
            if (v1) begin
                if (op == 2'd1) begin
                    mul_a <= k0_1 ? 32'(da) : 32'(db);
                    mul_b <= k0_1 ? $signed({1'b0, m1}) : $signed({1'b0, m2});
                end else begin
                    mul_a <= 32'(da);
                    mul_b <= f_bone ? 17'sd1 : db;
                end
            end
            if (v2) acc <= acc + 35'(prod);
            // softmax pipelines: scores -> max (S_SMAX), scores -> EXP -> den (S_SDEN)
            sv1 <= 1'b0; sv2 <= sv1;
            if (st == S_SMAX && sv1) begin
                if (smx_first || $signed(a1_d) > mx) mx <= a1_d;
                smx_first <= 1'b0;
            end
            if (st == S_SDEN && sv2) den <= den + 24'(p_d);

            unique case (st)
                S_IDLE: if (start) begin
                    busy <= 1'b1; st <= S_CPY; ci <= '0; cv1 <= 1'b0; cph <= 1'b0;
                end
                S_CPY: begin
                    // INPUT -> ACT1[0 ..< W*F]: read one element a cycle, write it the next
                    // one element every two cycles: the register map's CRC takes a byte a cycle
                    cph <= ~cph;
                    cv1 <= !cph && 32'(ci) < NIN; ci_1 <= ci;
                    if (!cph && 32'(ci) < NIN) ci <= ci + 16'd1;
                    if (!cph && !cv1 && 32'(ci) == NIN) begin st <= S_FETCH; pc <= '0; fi <= '0; end
                end
                S_FETCH: begin
                    // word w = fi - 1 arrives from the ROM: a loop field, a base address, or a
                    // table index whose PARAM read is issued now; the read of word w - 1 lands now
                    fi <= fi + 5'd1;
                    if (fi != 5'd0 && fi <= 5'd15) fld[4'(fi - 5'd1)] <= rom_d;
                    if (fi == 5'd5) begin a_t <= rom_d; a_tj <= rom_d; a_p <= rom_d; end
                    if (fi == 5'd9) b_base <= rom_d;
                    if (fi == 5'd12) begin y_t <= rom_d; y_p <= rom_d; end
                    if (fi == 5'd16) b_none <= rom_d == 16'hFFFF;
                    unique case (fi)
                        5'd17: begin
                            b_base <= b_base + (b_none ? 16'd0 : p_d);
                            b_t <= b_base + (b_none ? 16'd0 : p_d);
                            b_j <= b_base + (b_none ? 16'd0 : p_d);
                        end
                        5'd18: begin bias_b <= p_d; bias_p <= p_d; end
                        5'd19: za <= p_d;
                        5'd20: zb <= f_bone ? 16'sd0 : p_d;
                        5'd21: yb <= p_d[4:0];
                        5'd22: zy <= p_d;
                        5'd23: m1 <= p_d;
                        5'd24: m2 <= p_d;
                        5'd25: n <= p_d[5:0];
                        default: ;
                    endcase
                    if (fi == 5'd25) begin
                        t <= '0; j <= '0; k <= '0; bs <= '0;
                        unique case (op)
                            2'd0, 2'd1: st <= S_BIAS;
                            2'd2: begin st <= S_SMAX; smx_first <= 1'b1; end
                            default: st <= S_END;
                        endcase
                    end
                end
                S_BIAS: begin
                    a_p <= a_tj; b_p <= b_j; k <= '0;
                    if (!f_bias) begin acc <= '0; st <= S_MAC; end
                    else begin
                        bs <= bs + 2'd1;
                        if (bs == 2'd1) acc[15:0] <= p_d;
                        if (bs == 2'd2) begin acc[34:16] <= 19'($signed(p_d)); st <= S_MAC; bs <= '0; end
                    end
                end
                S_MAC: begin
                    v1 <= 1'b1; k0_1 <= (k == 11'd0); blo_1 <= b_p[0];
                    a_p <= a_p + fld[7]; b_p <= b_p + fld[10]; k <= k + 11'd1;
                    if (k + 11'd1 == fld[3][10:0]) st <= S_DRAIN;
                end
                S_DRAIN: if (!v1 && !v2 && !v3) begin st <= S_POST; pp <= '0; sm <= 1'b0; end
                S_POST: begin
                    pp <= pp + 3'd1;
                    unique case (pp)
                        3'd0: begin mul_a <= acc[31:0]; mul_b <= $signed({1'b0, m1}); end
                        3'd1: ;
                        3'd2: begin
                            rnd_en <= pn != 6'd0; shc <= (pn == 6'd0) ? 6'd0 : pn - 6'd1;
                            sh <= pv - ((pn != 6'd0 && pv[48]) ? 49'sd1 : 49'sd0); pp <= 3'd5;
                        end
                        3'd5: begin
                            pp <= 3'd5;
                            if (shc >= 6'd4) begin sh <= sh >>> 4; shc <= shc - 6'd4; end
                            else if (shc != 6'd0) begin sh <= sh >>> 1; shc <= shc - 6'd1; end
                            else begin
                                prnd <= (pr > PCLAMP) ? 19'(PCLAMP) : (pr < NCLAMP) ? 19'(NCLAMP) : 19'(pr);
                                pp <= 3'd3;
                            end
                        end
                        3'd3: py <= py_c;                 // SAT(z + RSHR), ReLU; written next
                        default: begin
                            pp <= '0;
                            if (sm) begin
                                // next score of the row, or the next row
                                a_p <= a_p + 16'd2; j <= j + 11'd1; bs <= '0; st <= S_SRD;
                                if (j + 11'd1 == fld[2][10:0]) begin
                                    j <= '0; k <= '0; t <= t + 11'd1; a_t <= a_t + fld[5]; a_p <= a_t + fld[5];
                                    smx_first <= 1'b1; st <= S_SMAX;
                                    if (t + 11'd1 == fld[1][10:0]) st <= S_NEXT;
                                end
                            end else begin
                                st <= S_BIAS;
                                if (j + 11'd1 == fld[2][10:0]) begin
                                    j <= '0; bias_p <= bias_b;
                                    a_t <= a_t + fld[5]; a_tj <= a_t + fld[5];
                                    b_t <= b_t + fld[14]; b_j <= b_t + fld[14];
                                    y_t <= y_t + fld[12]; y_p <= y_t + fld[12];
                                    t <= t + 11'd1;
                                    if (t + 11'd1 == fld[1][10:0]) st <= S_NEXT;
                                end else begin
                                    j <= j + 11'd1; bias_p <= bias_p + 16'd4;
                                    a_tj <= a_tj + fld[6]; b_j <= b_j + fld[9]; y_p <= y_p + fld[13];
                                end
                            end
                        end
                    endcase
                end
                S_SMAX: begin
                    if (k < fld[2][10:0]) begin sv1 <= 1'b1; a_p <= a_p + 16'd2; k <= k + 11'd1; end
                    else if (!sv1) begin st <= S_SDEN; k <= '0; a_p <= a_t; den <= '0; end
                end
                S_SDEN: begin
                    if (k < fld[2][10:0]) begin sv1 <= 1'b1; a_p <= a_p + 16'd2; k <= k + 11'd1; end
                    else if (!sv1 && !sv2) begin
                        st <= S_SDIV; dc <= '0; rem <= '0; mul_a <= '0;
                    end
                end
                S_SDIV: begin
                    // restoring division: inv = floor(R * 2^30 / den), one quotient bit a cycle
                    if (dc == 6'd46) begin st <= S_SRD; a_p <= a_t; j <= '0; bs <= '0; end
                    else begin
                        dc <= dc + 6'd1;
                        if ({rem[23:0], nbit} >= {1'b0, den}) begin
                            rem <= {rem[23:0], nbit} - {1'b0, den}; mul_a <= {mul_a[30:0], 1'b1};
                        end else begin
                            rem <= {rem[23:0], nbit}; mul_a <= {mul_a[30:0], 1'b0};
                        end
                    end
                end
                S_SRD: begin
                    // one score: read it (0), read its EXP entry (1), e * inv into the post (2)
                    bs <= bs + 2'd1;
                    if (bs == 2'd2) begin
                        mul_b <= $signed({1'b0, p_d});      // mul_a holds inv (the quotient)
                        st <= S_POST; pp <= 3'd1; sm <= 1'b1; bs <= '0;
                    end
                end
                S_END: begin
                    if (k < fld[2][10:0]) begin sv1 <= 1'b1; a_p <= a_p + fld[7]; k <= k + 11'd1; ci_1 <= 16'(k); end
                    if (sv1) out_q[16 * ci_1 +: 16] <= a1_d;
                    if (k == fld[2][10:0] && !sv1) begin st <= S_IDLE; busy <= 1'b0; done <= 1'b1; end
                end
                S_NEXT: begin pc <= pc + 8'd1; fi <= '0; st <= S_FETCH; end
                default: st <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
