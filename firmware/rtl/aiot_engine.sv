// aiot_engine: the integer Transformer of docs/arithmetic.md §5, computed by LANES parallel
// multiply-accumulate lanes (one DSP48E1 each) driven by a pass sequencer.
//
// Data layout (all engine memories are LANES elements wide):
//   ACT  activations, row-major: word (row, channel block) holds LANES consecutive channels.
//   WMEM weights [J, K]: word (j block, k) holds W[j block*LANES + lane, k].
//   BMEM biases: word (j block) holds LANES biases.
//   KT   the keys transposed, in WMEM after the weights: word (channel, time block) holds LANES
//        consecutive time steps.
//   EXPM the softmax tables, 256 entries per layer.
// A pass is a loop over blocks (output row t, output block cb); a block is K MAC steps (one
// broadcast operand, one per-lane operand), then the accumulators are captured and go one at a
// time through POST_LANES epilogue units (requant product acc * m, rounding shift, saturation)
// and one word is written back.
// Attention runs row by row: scores(i+1) overlaps softmax(i) (EXP lookups, one division per
// row); the context pass computes the probabilities on the fly from e_j and 1/den.
// Contract v2 (`skip`, an image of format 2): the head writes its activation `head` to ACT, a
// linear pass over the raw window flattened time-major (T = 1, K = W*F, the lanes' E1 with the
// input's zero point on the broadcast path, as input_proj) writes `skip`, and an addition pass
// (E2, the pe_add/residual path) writes the output: no new arithmetic, two more passes.
`resetall
`default_nettype none
module aiot_engine #(
    parameter int WINDOW = 24,       // W: window length (time steps)
    parameter int FEATURES = 1,      // F: input features
    parameter int D_MODEL = 16,      // d: model width
    parameter int HEADS = 1,         // H: attention heads (D_MODEL % HEADS == 0)
    parameter int LAYERS = 1,        // N: encoder layers
    parameter int HORIZON = 1,       // P: forecast steps
    parameter int LANES = 16,        // parallel MAC lanes (DSP48E1 slices)
    parameter int POST_LANES = 1,    // epilogue units (LANES % POST_LANES == 0)
    // derived sizes (not meant to be overridden)
    localparam int L = LANES,
    localparam int DH = D_MODEL / HEADS,
    localparam int FFN = 4 * D_MODEL,
    localparam int CBD = (D_MODEL + L - 1) / L,     // words per [*, d] row
    localparam int CBF = (FEATURES + L - 1) / L,    // words per input row
    localparam int CBFF = (FFN + L - 1) / L,        // words per [*, 4d] row
    localparam int CBP = (HORIZON + L - 1) / L,     // blocks of the head
    localparam int JB = (WINDOW + L - 1) / L,       // time blocks of the keys
    localparam int NACT = 6 + 13 * LAYERS,
    localparam int NRQ = 4 + 12 * LAYERS,
    // ACT regions (word bases)
    localparam int A_IN = 0,
    localparam int A_PE = A_IN + WINDOW * CBF,
    localparam int A_IP = A_PE + WINDOW * CBD,
    localparam int A_X = A_IP + WINDOW * CBD,
    localparam int A_Q = A_X + WINDOW * CBD,
    localparam int A_V = A_Q + WINDOW * CBD,
    localparam int A_C = A_V + WINDOW * CBD,
    localparam int A_O = A_C + WINDOW * CBD,
    localparam int A_R1 = A_O + WINDOW * CBD,
    localparam int A_N1 = A_R1 + WINDOW * CBD,
    localparam int A_F2 = A_N1 + WINDOW * CBD,
    localparam int A_R2 = A_F2 + WINDOW * CBD,
    localparam int A_F1 = A_R2 + WINDOW * CBD,
    localparam int A_PL = A_F1 + WINDOW * CBFF,
    localparam int A_HD = A_PL + CBD,              // v2: head, then skip (CBP words each)
    localparam int A_SK = A_HD + CBP,
    localparam int ACT_DEPTH = A_SK + CBP,
    // WMEM / BMEM layout, in tensor order
    localparam int W_IP = 0,
    localparam int W_LAYER = 4 * CBD * D_MODEL + 2 * CBD + CBFF * D_MODEL + CBD * FFN,
    localparam int W_L0 = W_IP + CBD * FEATURES,
    localparam int W_HEAD = W_L0 + LAYERS * W_LAYER,
    localparam int W_SKIP = W_HEAD + CBP * D_MODEL, // v2: skip.weight [P, W*F]
    localparam int W_KT = W_SKIP + CBP * WINDOW * FEATURES,  // the keys, transposed (written by the K pass)
    localparam int WMEM_DEPTH = W_KT + D_MODEL * JB,
    localparam int B_LAYER = 7 * CBD + CBFF,
    localparam int B_L0 = CBD,
    localparam int B_HEAD = B_L0 + LAYERS * B_LAYER,
    localparam int B_SKIP = B_HEAD + CBP,          // v2: skip.bias
    localparam int B_ZERO = B_SKIP + CBP,          // a word that stays zero: no bias
    localparam int BMEM_DEPTH = B_ZERO + 1,
    localparam int EXP_DEPTH = 256 * LAYERS,
    localparam int ACT_AW = $clog2(ACT_DEPTH),
    localparam int WM_AW = (WMEM_DEPTH > 1) ? $clog2(WMEM_DEPTH) : 1,
    localparam int BM_AW = (BMEM_DEPTH > 1) ? $clog2(BMEM_DEPTH) : 1,
    localparam int EX_AW = $clog2(EXP_DEPTH)
) (
    input  wire logic clk,
    input  wire logic rst,
    input  wire logic start,          // pulse: run one inference (tables and memories loaded)
    input  wire logic abort,          // pulse: stop now (SOFT_RESET)
    output      logic busy,
    output      logic done,           // pulse when the outputs are written

    // input window, read by the engine at start (latched copy): element index -> value
    output      logic [15:0] in_raddr,
    input  wire logic [15:0] in_rdata,   // one cycle after in_raddr
    output      logic        in_valid,   // in_rdata holds the next element of the copy

    // outputs
    output      logic [HORIZON*16-1:0] out_q,

    // loader write ports (engine idle while the loader runs)
    input  wire logic                ld_act_we, ld_wm_we, ld_bm_we, ld_exp_we,
    /* verilator lint_off UNUSEDSIGNAL */  // memories use the low address bits they need
    input  wire logic [15:0]         ld_addr,     // word address  /* verilator lint_on UNUSEDSIGNAL */
    input  wire logic [L-1:0]        ld_lane,     // one-hot lane
    input  wire logic [31:0]         ld_data,
    input  wire logic                ld_qact_we, ld_qrq_we,
    /* verilator lint_off UNUSEDSIGNAL */  // memories use the low address bits they need
    input  wire logic [7:0]          ld_qidx,  /* verilator lint_on UNUSEDSIGNAL */
    /* verilator lint_off UNUSEDSIGNAL */  // memories use the low address bits they need
    input  wire logic [39:0]         ld_qdata,    // qact {bits[4:0], zp[15:0]}; qwz {zp}; qrq {n[5:0], m2, m1}  /* verilator lint_on UNUSEDSIGNAL */
    input  wire logic                skip         // the loaded image is contract v2: run steps 16-17
);
    // ---------------------------------------------------------------- parameter checks
    initial begin
        if (WINDOW < 1 || WINDOW > 256) $error("WINDOW must be 1..256 (instance %m)");
        if (FEATURES < 1 || FEATURES > 16) $error("FEATURES must be 1..16 (instance %m)");
        if (D_MODEL < 2 || D_MODEL > 256) $error("D_MODEL must be 2..256 (instance %m)");
        if (HEADS < 1 || HEADS > 8 || D_MODEL % HEADS != 0) $error("HEADS must be 1..8 and divide D_MODEL (instance %m)");
        if (LAYERS < 1 || LAYERS > 8) $error("LAYERS must be 1..8 (instance %m)");
        if (HORIZON < 1 || HORIZON > 64) $error("HORIZON must be 1..64 (instance %m)");
        if (LANES < 1 || LANES > 32) $error("LANES must be 1..32 (instance %m)");
        if (POST_LANES < 1 || LANES % POST_LANES != 0) $error("POST_LANES must divide LANES (instance %m)");
        if (ACT_DEPTH > 65536 || WMEM_DEPTH > 65536) $error("shape too large for 16-bit word addresses (instance %m)");
    end

    localparam int NG = L / POST_LANES;      // epilogue cycles per block
    // table index widths; v2 appends skip, output (activations) and skip, output (requants)
    localparam int QAW = $clog2(NACT + 2), QRW = $clog2(NRQ + 2);
    localparam int LW = (L > 1) ? $clog2(L) : 1;
    localparam int JBW = (JB > 1) ? $clog2(JB) : 1;   // index width of the score-row words
    localparam int TRN = (L < D_MODEL) ? L : D_MODEL;   // channels per keys word

    // ---------------------------------------------------------------- quantization tables
    logic [4:0]  qact_bits [NACT + 2];
    logic [15:0] qact_zp   [NACT + 2];
    logic [15:0] qm1 [NRQ + 2];
    logic [15:0] qm2 [NRQ + 2];
    logic [5:0]  qn  [NRQ + 2];
    always_ff @(posedge clk) begin
        if (ld_qact_we) begin qact_bits[QAW'(ld_qidx)] <= ld_qdata[20:16]; qact_zp[QAW'(ld_qidx)] <= ld_qdata[15:0]; end
        if (ld_qrq_we) begin qm1[QRW'(ld_qidx)] <= ld_qdata[15:0]; qm2[QRW'(ld_qidx)] <= ld_qdata[31:16]; qn[QRW'(ld_qidx)] <= ld_qdata[37:32]; end
    end

    // ---------------------------------------------------------------- memories
    logic [L-1:0]      act_we;
    logic [ACT_AW-1:0] act_waddr, act_raddr;
    // activations are stored centered (y - z, 17 bits: every consumer wants x - z_x); the input
    // window is the exception (raw, its zero point is subtracted on the broadcast path)
    logic [17*L-1:0]   act_wdata, act_rdata;
    aiot_ram #(.LANES(L), .LANE_BITS(17), .DEPTH(ACT_DEPTH), .DISTRIBUTED(0)) u_act (
        .clk, .we(act_we), .waddr(act_waddr), .wdata(act_wdata), .raddr(act_raddr), .rdata(act_rdata));

    // WMEM holds the weights (w - z_w, centered by the loader) and, after them, the keys transposed
    // (k - z_k, written by the K pass): one per-lane 9-bit source for the lanes' second operand.
    // The loader writes only while the engine is idle, the keys only during an inference.
    logic [WM_AW-1:0] wm_raddr;
    logic [9*L-1:0]   wm_rdata;                 // 9 bits a lane
    logic [L-1:0]     kt_we;
    logic [15:0]      kt_waddr;                 // word within the keys region
    logic [9*L-1:0]   kt_wdata;
    aiot_ram #(.LANES(L), .LANE_BITS(9), .DEPTH(WMEM_DEPTH), .DISTRIBUTED(0)) u_wmem (
        .clk, .we(ld_wm_we ? ld_lane : kt_we), .waddr(ld_wm_we ? WM_AW'(ld_addr) : WM_AW'(16'(W_KT) + kt_waddr)),
        .wdata(ld_wm_we ? {L{ld_data[8:0]}} : kt_wdata), .raddr(wm_raddr), .rdata(wm_rdata));

    logic [BM_AW-1:0] bm_raddr;
    logic [26*L-1:0]  bm_rdata;                 // biases: |B| < 2^25 (b_x <= 16, b_w <= 8)
    aiot_ram #(.LANES(L), .LANE_BITS(26), .DEPTH(BMEM_DEPTH), .DISTRIBUTED(1)) u_bmem (
        .clk, .we(ld_bm_we ? ld_lane : '0), .waddr(BM_AW'(ld_addr)), .wdata({L{ld_data[25:0]}}),
        .raddr(bm_raddr), .rdata(bm_rdata));


    logic [EX_AW-1:0] ex_raddr;
    logic [15:0]      ex_rdata;
    aiot_ram #(.LANES(1), .LANE_BITS(16), .DEPTH(EXP_DEPTH), .DISTRIBUTED(0)) u_exp (
        .clk, .we(ld_exp_we), .waddr(EX_AW'(ld_addr)), .wdata(ld_data[15:0]), .raddr(ex_raddr), .rdata(ex_rdata));

    // ---------------------------------------------------------------- pass kinds
    localparam logic [2:0] PK_LIN = 3'd0, PK_ADD = 3'd1, PK_BN = 3'd2, PK_POOL = 3'd3,
                           PK_SCO = 3'd4, PK_CTX = 3'd5;
    localparam logic [1:0] DS_ACT = 2'd0, DS_KT = 2'd1, DS_SROW = 2'd2, DS_OUT = 2'd3;

    // generic pass parameters (LIN/ADD/BN/POOL), set by the sequencer
    logic [2:0]  g_pk;
    logic [15:0] g_rows, g_cbs, g_k;        // output rows, output blocks, MAC steps
    logic [15:0] g_lim;                     // valid output channels
    logic [15:0] g_a_base, g_a_stride, g_x2_base, g_w_base, g_b_base, g_d_base, g_d_stride;
    logic        g_bias, g_relu, g_center;
    logic        g_flat;                    // v2 skip pass: the broadcast walks the window [W, F] as [1, W*F]
    logic [1:0]  g_dst;
    logic signed [16:0] g_za, g_zy, g_lo, g_hi;
    logic [15:0] g_m1, g_m2;
    logic [5:0]  g_n;
    // attention parameters of the current layer
    logic signed [16:0] sc_zy, sc_lo, sc_hi;
    logic [15:0] sc_m; logic [5:0] sc_n;
    logic signed [16:0] cx_zy, cx_lo, cx_hi, cx_plo, cx_pz;
    logic [15:0] cx_m; logic [5:0] cx_n;
    logic [8:0]  sm_r;                      // R = 2^b_probs - 1
    logic [15:0] exp_base;                  // layer * 256

    // ---------------------------------------------------------------- issue stage
    typedef enum logic [2:0] {IS_IDLE, IS_RUN, IS_BUBBLE} is_t;
    is_t is_st;
    logic        iss_go;                    // sequencer: start a pass (generic or attention row)
    logic [2:0]  iss_pk;
    logic [15:0] iss_row;                   // SCO/CTX: query row
    logic [3:0]  iss_head;

    logic [15:0] t, cb, s;
    logic [15:0] rowoff_a, rowoff_d, wrow, ktp, vp, s_w;
    logic [LW-1:0] s_l;
    logic [4:0]  s_f;                       // feature of the broadcast element (flat pass)
    logic [15:0] cb_end, lim_lo, lim_hi;
    logic [2:0]  pk;
    logic [15:0] row_i;
    logic        iss_par;                   // attention row parity (r mod 2) of the pass
    logic        par_q;
    logic [3:0]  iss_head_q;

    // token fields (issue -> operand -> lanes -> capture)
    typedef struct packed {
        logic        v;
        logic        first, last;
        logic [2:0]  pk;
        logic        x2;
        logic        par;
        logic [LW-1:0] lane;
        logic [15:0] s;
        logic [15:0] t, cb;
        logic [15:0] daddr;
        logic [L-1:0] mask;
    } tok_t;
    tok_t tk_i, tk_m, tk_o, tk_d;


    logic [15:0] k_cur;
    always_comb k_cur = (pk == PK_SCO) ? 16'(DH) : (pk == PK_CTX) ? 16'(WINDOW) : g_k;

    // memory addresses and the token of this cycle. Only whole variables are assigned in
    // always_comb blocks (Icarus 11 re-triggers a block on its own part-select writes).
    logic [15:0]  tk_daddr;
    logic [L-1:0] tk_mask;
    logic         tk_run;
    // Epilogue throughput: the accumulators of consecutive blocks (of any passes) are captured
    // at least NG cycles apart. `since` counts cycles since the last block's final token; a block
    // starts only if its own final token will come NG or more cycles after that one.
    logic [7:0]   since;
    logic         hold;
    assign hold = (is_st == IS_RUN) && (s == 0) && (32'(since) + 32'(k_cur) - 1 < NG);
    always_ff @(posedge clk) begin
        if (rst) since <= 8'hFF;
        else if (tk_i.v && tk_i.last) since <= 8'd1;
        else if (since != 8'hFF) since <= since + 8'd1;
    end
    logic         bias_i;                    // this token reads a bias (else the zero word)
    assign bias_i = g_bias && (pk == PK_LIN || pk == PK_BN);
    always_comb tk_run = (is_st == IS_RUN) && !hold;
    always_comb begin
        act_raddr = '0; wm_raddr = '0; bm_raddr = BM_AW'(B_ZERO);
        tk_daddr = '0;
        unique case (pk)
            PK_LIN: begin
                act_raddr = ACT_AW'(g_a_base + rowoff_a + s_w);
                wm_raddr = WM_AW'(wrow + s);
                bm_raddr = BM_AW'(bias_i ? g_b_base + cb : 16'(B_ZERO));
                tk_daddr = g_d_base + rowoff_d + cb;
            end
            PK_ADD, PK_BN: begin
                act_raddr = ACT_AW'(((pk == PK_ADD && s == 1) ? g_x2_base : g_a_base) + rowoff_a + cb);
                wm_raddr = WM_AW'(g_w_base + cb);
                bm_raddr = BM_AW'(bias_i ? g_b_base + cb : 16'(B_ZERO));
                tk_daddr = g_d_base + rowoff_d + cb;
            end
            PK_POOL: begin
                act_raddr = ACT_AW'(vp);
                tk_daddr = g_d_base + cb;
            end
            PK_SCO: begin
                act_raddr = ACT_AW'(16'(A_Q) + rowoff_a + s_w);
                wm_raddr = WM_AW'(16'(W_KT) + ktp);
            end
            default: begin // PK_CTX
                act_raddr = ACT_AW'(vp);
                tk_daddr = 16'(A_C) + rowoff_d + cb;
            end
        endcase
    end
    // valid output lanes of block cb: channels [lim_lo, lim_hi) of the pass
    function automatic logic [L-1:0] lanes_in(input logic [15:0] base, input logic [15:0] lo_c, input logic [15:0] hi_c);
        logic [15:0] nh, nl;
        logic [L:0] th, tl;
        nh = (hi_c <= base) ? 16'd0 : (hi_c - base >= 16'(L)) ? 16'(L) : hi_c - base;
        nl = (lo_c <= base) ? 16'd0 : (lo_c - base >= 16'(L)) ? 16'(L) : lo_c - base;
        th = ((L+1)'(1) << nh) - (L+1)'(1);
        tl = ((L+1)'(1) << nl) - (L+1)'(1);
        lanes_in = L'(th & ~tl);
    endfunction
    assign tk_mask = lanes_in(16'(cb * L), lim_lo, lim_hi);
    // field order of tok_t
    assign tk_i = {tk_run, tk_run && (s == 0), tk_run && (s == k_cur - 1), pk,
                   (pk == PK_ADD) && (s == 1), par_q, s_l, s,
                   (pk == PK_SCO || pk == PK_CTX) ? row_i : t, cb, tk_daddr, tk_mask};

    // issue state machine: counters of the running pass
    always_ff @(posedge clk) begin
        if (rst || abort) begin
            is_st <= IS_IDLE;
        end else begin
            unique case (is_st)
                IS_IDLE: if (iss_go) begin
                    pk <= iss_pk;
                    row_i <= iss_row;
                    par_q <= iss_par;
                    iss_head_q <= iss_head;
                    t <= '0; s <= '0;
                    rowoff_a <= '0; rowoff_d <= '0;
                    unique case (iss_pk)
                        PK_SCO: begin
                            cb <= '0; cb_end <= 16'(JB); wrow <= '0;
                            lim_lo <= '0; lim_hi <= 16'(WINDOW);
                            rowoff_a <= iss_row * 16'(CBD);
                            s_w <= (16'(iss_head) * 16'(DH)) / 16'(L);
                            s_l <= LW'((16'(iss_head) * 16'(DH)) % 16'(L));
                            ktp <= 16'(iss_head) * 16'(DH) * 16'(JB);
                        end
                        PK_CTX: begin
                            cb <= (16'(iss_head) * 16'(DH)) / 16'(L);
                            cb_end <= (16'(iss_head) * 16'(DH) + 16'(DH) - 16'd1) / 16'(L) + 16'd1;
                            lim_lo <= 16'(iss_head) * 16'(DH);
                            lim_hi <= 16'(iss_head) * 16'(DH) + 16'(DH);
                            rowoff_d <= iss_row * 16'(CBD);
                            vp <= 16'(A_V) + (16'(iss_head) * 16'(DH)) / 16'(L);
                        end
                        default: begin
                            cb <= '0; cb_end <= g_cbs; wrow <= g_w_base;
                            lim_lo <= '0; lim_hi <= g_lim;
                            s_w <= '0; s_l <= '0; s_f <= '0;
                            vp <= g_a_base;
                        end
                    endcase
                    is_st <= IS_RUN;
                end
                IS_RUN, IS_BUBBLE: begin
                    logic blk_end;
                    blk_end = 1'b0;
                    if (hold) begin
                        blk_end = 1'b0;             // wait: the epilogue is still busy
                    end else if (is_st == IS_RUN) begin
                        if (s == k_cur - 1) begin
                            blk_end = 1'b1;
                        end else begin
                            s <= s + 16'd1;
                            // next word after the last lane, and in the flat pass after a row's last feature
                            if (32'(s_l) == L - 1 || (g_flat && 32'(s_f) == FEATURES - 1)) begin s_l <= '0; s_w <= s_w + 16'd1; end
                            else s_l <= s_l + LW'(1);
                            s_f <= (32'(s_f) == FEATURES - 1) ? 5'd0 : s_f + 5'd1;
                            ktp <= ktp + 16'(JB);
                            vp <= vp + ((pk == PK_CTX) ? 16'(CBD) : g_a_stride);
                        end
                    end else begin
                        blk_end = 1'b1;
                    end
                    if (blk_end) begin
                        begin
                            logic last_cb;
                            is_st <= IS_RUN;
                            s <= '0;
                            last_cb = (cb + 16'd1 == cb_end);
                            unique case (pk)
                                PK_SCO: begin
                                    s_w <= (16'(iss_head_q) * 16'(DH)) / 16'(L);
                                    s_l <= LW'((16'(iss_head_q) * 16'(DH)) % 16'(L));
                                    ktp <= 16'(iss_head_q) * 16'(DH) * 16'(JB) + cb + 16'd1;
                                end
                                PK_CTX: vp <= 16'(A_V) + cb + 16'd1;
                                PK_POOL: vp <= g_a_base + cb + 16'd1;
                                default: begin s_w <= '0; s_l <= '0; s_f <= '0; end
                            endcase
                            if (!last_cb) begin
                                cb <= cb + 16'd1;
                                wrow <= wrow + g_k;
                            end else begin
                                cb <= (pk == PK_CTX) ? (16'(iss_head_q) * 16'(DH)) / 16'(L) : 16'd0;
                                wrow <= g_w_base;
                                if (pk == PK_SCO || pk == PK_CTX || t + 16'd1 == g_rows) begin
                                    is_st <= IS_IDLE;
                                end else begin
                                    t <= t + 16'd1;
                                    rowoff_a <= rowoff_a + g_a_stride;
                                    rowoff_d <= rowoff_d + g_d_stride;
                                end
                            end
                        end
                    end
                end
                default: is_st <= IS_IDLE;
            endcase
        end
    end

    // ---------------------------------------------------------------- softmax row buffers
    logic        sm_reset;                   // sequencer: a new layer's attention starts
    logic [8*L-1:0]     srow [2][JB];           // score rows as written (8-bit scores)
    logic signed [7:0]  run_mx;                 // running row maximum, kept in the epilogue
    // e_j of the two rows in flight (softmax numerators), distributed RAM
    localparam int EW = $clog2(2 * WINDOW);
    logic         erow_we;
    logic [EW-1:0] erow_waddr, erow_raddr;
    logic [15:0]  erow_rdata;
    aiot_lutram #(.WIDTH(16), .DEPTH(2 * WINDOW)) u_erow (
        .clk, .we(erow_we), .waddr(erow_waddr), .wdata(ex_rdata), .raddr(erow_raddr), .rdata(erow_rdata));
    logic signed [7:0]  smax [2];
    logic [23:0]        sinv [2];
    logic [15:0]        rows_posted, rows_ready;   // attention rows (h*W + i) scored / normalized

    // ---------------------------------------------------------------- operand stage
    // the e_j * inv product of the context pass (a DSP of its own)
    logic [39:0] pe_prod;
    always_comb erow_raddr = EW'(32'(par_q) * WINDOW + ((32'(tk_i.s) < WINDOW) ? 32'(tk_i.s) : 32'd0));
    always_ff @(posedge clk) pe_prod <= 40'(erow_rdata) * 40'(sinv[par_q]);

    logic signed [24:0] a_r [L];
    logic signed [17:0] b_r [L];
    logic signed [31:0] bias_r [L];
    always_ff @(posedge clk) tk_m <= tk_i;

    // broadcast operand (one per cycle) and the per-lane operands. One subtractor per operand
    // and lane: the source is selected first, then its zero point is subtracted.
    logic signed [16:0] bc;
    logic signed [16:0] bc_el;
    logic signed [17:0] bm_sel;
    assign bc_el = act_rdata[17*tk_m.lane +: 17];
    assign bc = (tk_m.pk == PK_CTX) ? cx_plo + 17'((pe_prod + 40'd536870912) >> 30) - cx_pz
                                         : bc_el - g_za;
    // broadcast second operand: the addition multipliers, 1 for the pooling sum
    assign bm_sel = (tk_m.pk == PK_ADD) ? (tk_m.x2 ? 18'(g_m2) : 18'(g_m1)) : 18'sd1;
    logic lane_a, lane_b;                    // per-lane a (element passes), per-lane b (weights, keys, values)
    assign lane_a = (tk_m.pk == PK_ADD || tk_m.pk == PK_BN || tk_m.pk == PK_POOL);
    assign lane_b = (tk_m.pk == PK_LIN || tk_m.pk == PK_BN || tk_m.pk == PK_SCO || tk_m.pk == PK_CTX);

    always_ff @(posedge clk) tk_o <= tk_m;
    // per-lane second operand, already centered: weights (loader), keys and values (epilogue)
    function automatic logic signed [17:0] b_source(input logic [2:0] kind, input logic [16:0] av, input logic [8:0] wv);
        if (kind == PK_CTX) b_source = 18'($signed(av));      // values
        else b_source = 18'($signed(wv));                      // weights, or keys (scores)
    endfunction
    always_ff @(posedge clk) begin
        for (int l = 0; l < L; l++) begin
            bias_r[l] <= 32'($signed(bm_rdata[26*l +: 26]));
            a_r[l] <= lane_a ? 25'($signed(act_rdata[17*l +: 17])) : 25'(bc);
            b_r[l] <= lane_b ? b_source(tk_m.pk, act_rdata[17*l +: 17], wm_rdata[9*l +: 9]) : bm_sel;
        end
    end

    // ---------------------------------------------------------------- lanes
    /* verilator lint_off UNUSEDSIGNAL */  // |acc| < 2^34: the epilogue takes bits 34..0
    logic signed [47:0] acc [L];
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar l = 0; l < L; l++) begin : g_lane
        aiot_lane u_lane (.clk, .en(tk_o.v), .first(tk_o.first), .a(a_r[l]), .b(b_r[l]),
                          .bias(bias_r[l]), .acc(acc[l]));
    end
    always_ff @(posedge clk) tk_d <= tk_o;

    // ---------------------------------------------------------------- epilogue
    // capture: the cycle after a block's last step the accumulators are final
    logic signed [34:0] shadow [L];          // |acc| < 2^34 (docs/arithmetic.md §6)
    tok_t        cap_tk;
    logic        cap_v;
    logic [LW:0] grp;                       // group being fed to the post units
    // requantization of the block: multiplier (1 for the additions, whose sum is already the
    // scaled value), shift, zero point, bounds, ReLU, centering; rides along the epilogue pipeline
    typedef struct packed {
        logic [15:0]        m;
        logic [5:0]         n;
        logic signed [16:0] z, lo, hi;
        logic               relu, center;
    } rq_t;
    rq_t         cap_rq;
    logic [1:0]  cap_dst;
    always_ff @(posedge clk) begin
        if (rst || abort) begin
            cap_v <= 1'b0;
        end else if (tk_d.v && tk_d.last) begin
            for (int l = 0; l < L; l++) shadow[l] <= acc[l][34:0];
            cap_tk <= tk_d;
            cap_v <= 1'b1;
            grp <= '0;
            unique case (tk_d.pk)
                PK_SCO: begin cap_rq <= {sc_m, sc_n, sc_zy, sc_lo, sc_hi, 1'b0, 1'b0}; cap_dst <= DS_SROW; end
                PK_CTX: begin cap_rq <= {cx_m, cx_n, cx_zy, cx_lo, cx_hi, 1'b0, 1'b1}; cap_dst <= DS_ACT; end
                PK_ADD: begin cap_rq <= {16'd1, g_n, g_zy, g_lo, g_hi, g_relu, g_center}; cap_dst <= g_dst; end
                default: begin cap_rq <= {g_m1, g_n, g_zy, g_lo, g_hi, g_relu, g_center}; cap_dst <= g_dst; end
            endcase
        end else if (cap_v) begin
            if (32'(grp) == NG - 1) cap_v <= 1'b0;
            grp <= grp + 1'b1;
        end
    end

    // post units, five pipeline stages: select the element (e1), acc * m (e2, one shared
    // multiplier a unit: two DSP48E1), then aiot_post (p0, p1, p2); metadata rides along
    logic        e1_v, e2_v, p0_v, p1_v, p2_v;
    logic [LW:0] e1_g, e2_g, p0_g, p1_g, p2_g;
    tok_t        e1_tk, e2_tk, p0_tk, p1_tk, p2_tk;
    logic [1:0]  e1_dst, e2_dst, p0_dst, p1_dst, p2_dst;
    rq_t         e1_rq;
    /* verilator lint_off UNUSEDSIGNAL */  // m is used up by the multiplier
    rq_t         e2_rq;
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [16:0] post_y [POST_LANES];
    for (genvar k = 0; k < POST_LANES; k++) begin : g_post
        logic [LW-1:0] si;
        logic signed [34:0] e1_acc;
        /* verilator lint_off UNUSEDSIGNAL */  // |acc * m| < 2^50; the epilogue works on 48 bits
        logic signed [51:0] e2_prod;
        /* verilator lint_on UNUSEDSIGNAL */
        assign si = LW'((32'(grp) * POST_LANES + k < L) ? 32'(grp) * POST_LANES + k : 0);
        always_ff @(posedge clk) begin
            e1_acc <= shadow[si];
            e2_prod <= 52'(e1_acc) * 52'($signed({1'b0, e1_rq.m}));
        end
        aiot_post u_post (.clk, .v(e2_prod[47:0]), .n(e2_rq.n), .z(e2_rq.z), .lo(e2_rq.lo), .hi(e2_rq.hi),
                          .relu(e2_rq.relu), .center(e2_rq.center), .y(post_y[k]));
    end
    always_ff @(posedge clk) begin
        if (rst || abort) begin
            e1_v <= 1'b0; e2_v <= 1'b0; p0_v <= 1'b0; p1_v <= 1'b0; p2_v <= 1'b0;
        end else begin
            e1_v <= cap_v; e1_g <= grp; e1_tk <= cap_tk; e1_dst <= cap_dst; e1_rq <= cap_rq;
            e2_v <= e1_v; e2_g <= e1_g; e2_tk <= e1_tk; e2_dst <= e1_dst; e2_rq <= e1_rq;
            p0_v <= e2_v; p0_g <= e2_g; p0_tk <= e2_tk; p0_dst <= e2_dst;
            p1_v <= p0_v; p1_g <= p0_g; p1_tk <= p0_tk; p1_dst <= p0_dst;
            p2_v <= p1_v; p2_g <= p1_g; p2_tk <= p1_tk; p2_dst <= p1_dst;
        end
    end

    // assemble the output word; write it the cycle after the last group
    logic signed [16:0] ow [L];
    logic [L-1:0] p2_mask;                  // (Icarus 11 cannot index a struct field by a variable)
    assign p2_mask = p2_tk.mask;
    logic        wr_v;
    /* verilator lint_off UNUSEDSIGNAL */  // the write stage needs only some token fields
    tok_t        wr_tk;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [1:0]  wr_dst;
    // the word is complete in ow the cycle after its last group; the next block's first group
    // lands in ow at the end of that cycle at the earliest (blocks are >= NG cycles apart)
    always_ff @(posedge clk) begin
        wr_v <= 1'b0;
        if (rst || abort) begin
            wr_v <= 1'b0;
        end else if (p2_v) begin
            for (int k = 0; k < POST_LANES; k++) ow[32'(p2_g) * POST_LANES + k] <= post_y[k];
            if (p2_dst == DS_SROW) begin
                logic signed [7:0] mx;
                mx = (p2_g == 0 && p2_tk.cb == 0) ? -8'sd128 : run_mx;
                for (int k = 0; k < POST_LANES; k++)
                    if (p2_mask[32'(p2_g) * POST_LANES + k] && $signed(post_y[k][7:0]) > mx) mx = post_y[k][7:0];
                run_mx <= mx;
            end
            if (32'(p2_g) == NG - 1) begin
                wr_v <= 1'b1; wr_tk <= p2_tk; wr_dst <= p2_dst;
            end
        end
    end

`ifdef AIOT_TRACE
    always_ff @(posedge clk) if (wr_v) begin
        $write("TRACE %0d %0d %0d %0d %0d %0d", wr_dst, wr_tk.pk, wr_tk.daddr, wr_tk.t, wr_tk.cb, wr_tk.par);
        for (int l = 0; l < L; l++) $write(" %0d", ow[l]);
        $write("\n");
    end
`endif
    // destinations
    logic [HORIZON*16-1:0] out_r;
    assign out_q = out_r;
    logic              tr_busy;             // keys transposer
    logic [LW:0]       tr_l;
    logic [15:0]       tr_t, tr_cb;
    logic signed [16:0] tr_w [L];
    logic [L-1:0]      tr_mask;
    logic [L-1:0]      act_we_e;
    logic [ACT_AW-1:0] act_waddr_e;
    logic [17*L-1:0]   act_wdata_e;

    always_comb act_we_e = (wr_v && wr_dst == DS_ACT) ? wr_tk.mask : '0;
    always_comb act_waddr_e = ACT_AW'(wr_tk.daddr);
    for (genvar l = 0; l < L; l++) begin : g_actw
        assign act_wdata_e[17*l +: 17] = ow[l];
    end

    always_ff @(posedge clk) begin
        if (rst || abort || sm_reset) begin
            tr_busy <= 1'b0;
            rows_posted <= '0;
        end else begin
            if (wr_v && wr_dst == DS_KT) begin
                tr_busy <= 1'b1; tr_l <= '0; tr_t <= wr_tk.t; tr_cb <= wr_tk.cb; tr_mask <= wr_tk.mask;
                for (int l = 0; l < L; l++) tr_w[l] <= ow[l];
            end else if (tr_busy) begin
                tr_l <= tr_l + 1'b1;
                if (32'(tr_l) == TRN - 1) tr_busy <= 1'b0;
            end
            if (wr_v && wr_dst == DS_SROW) begin
                logic [8*L-1:0] w8;
                for (int l = 0; l < L; l++) w8[8*l +: 8] = ow[l][7:0];
                srow[wr_tk.par][JBW'(wr_tk.cb)] <= w8;
                smax[wr_tk.par] <= run_mx;
                if (32'(wr_tk.cb) == JB - 1) rows_posted <= rows_posted + 16'd1;
            end
            if (wr_v && wr_dst == DS_OUT)
                for (int l = 0; l < L; l++)
                    if (32'(wr_tk.cb) * L + l < HORIZON) out_r[16*(32'(wr_tk.cb) * L + l) +: 16] <= ow[l][15:0];
        end
    end

    always_comb kt_we = (tr_busy && tr_mask[LW'(tr_l)]) ? L'(1) << (32'(tr_t) % L) : '0;
    always_comb kt_waddr = (tr_cb * 16'(L) + 16'(tr_l)) * 16'(JB) + tr_t / 16'(L);
    always_comb kt_wdata = {L{tr_w[LW'(tr_l)][8:0]}};

    // ---------------------------------------------------------------- softmax engine
    // per attention row r: e_j = EXP[mx - S_j], den = sum e_j, inv = floor(R 2^30 / den)
    typedef enum logic [1:0] {SM_WAIT, SM_EXP, SM_DIV} sm_t;
    sm_t         sm_st;
    logic [15:0] sm_row;                     // next row to normalize (global r)
    logic [15:0] sm_j, sm_jd;
    logic        sm_rd_v;
    logic [23:0] sm_den;
    logic [4:0]  sm_it;
    logic [24:0] sm_rem;
    logic [21:0] sm_q;                       // quotient bits found so far (the last one is formed at the end)
    logic        sm_par;
    always_comb sm_par = sm_row[0];
    always_comb erow_we = (sm_st == SM_EXP) && sm_rd_v;
    always_comb erow_waddr = EW'(32'(sm_par) * WINDOW + 32'(sm_jd));
    logic signed [7:0] s_el;                 // score j of the row being normalized
    logic [8*L-1:0]    s_word;
    assign s_word = srow[sm_par][JBW'(sm_j / 16'(L))];
    assign s_el = s_word[8 * (32'(sm_j) % L) +: 8];
    always_comb ex_raddr = EX_AW'(exp_base + {8'd0, 8'(smax[sm_par] - s_el)});

    always_ff @(posedge clk) begin
        if (rst || abort || sm_reset) begin
            sm_st <= SM_WAIT; sm_row <= '0; rows_ready <= '0; sm_rd_v <= 1'b0;
        end else begin
            sm_rd_v <= 1'b0;
            unique case (sm_st)
                SM_WAIT: if (rows_posted > sm_row) begin
                    sm_st <= SM_EXP; sm_j <= '0; sm_den <= '0;
                end
                SM_EXP: begin
                    if (32'(sm_j) < WINDOW) begin
                        sm_rd_v <= 1'b1; sm_jd <= sm_j; sm_j <= sm_j + 16'd1;
                    end
                    if (sm_rd_v) begin
                        sm_den <= sm_den + 24'(ex_rdata);
                        if (32'(sm_jd) == WINDOW - 1) begin
                            sm_st <= SM_DIV; sm_it <= '0;
                            sm_rem <= 25'(sm_r) << 7;   // R 2^30 / den < 2^23 since den >= 2^15
                            sm_q <= '0;
                        end
                    end
                end
                default: begin // SM_DIV: restoring division, one quotient bit per cycle
                    logic [24:0] r2;
                    r2 = sm_rem << 1;
                    if (r2 >= 25'(sm_den)) begin sm_rem <= r2 - 25'(sm_den); sm_q <= {sm_q[20:0], 1'b1}; end
                    else begin sm_rem <= r2; sm_q <= {sm_q[20:0], 1'b0}; end
                    sm_it <= sm_it + 5'd1;
                    if (sm_it == 5'd22) begin
                        sm_st <= SM_WAIT;
                        sm_row <= sm_row + 16'd1;
                        rows_ready <= rows_ready + 16'd1;
                    end
                end
            endcase
        end
    end
`ifdef AIOT_TRACE
    always_ff @(posedge clk) if (sm_st == SM_EXP && sm_j < WINDOW)
        $display("SMEXP row %0d j %0d s %0d mx %0d addr %0d t=%0t", sm_row, sm_j, s_el, smax[sm_par], ex_raddr, $time);
    always_ff @(posedge clk) if (wr_v && wr_dst == DS_SROW)
        $display("SROWWR par %0d t %0d t=%0t", wr_tk.par, wr_tk.t, $time);
`endif
`ifdef AIOT_TRACE
    always_ff @(posedge clk) if (sm_st == SM_DIV && sm_it == 5'd22)
        $display("SMAX row %0d max %0d den %0d inv %0d", sm_row, smax[sm_par], sm_den, {1'b0, sm_q[21:0], (sm_rem << 1) >= 25'(sm_den)});
`endif
    always_ff @(posedge clk)
        if (sm_st == SM_DIV && sm_it == 5'd22) sinv[sm_par] <= {1'b0, sm_q[21:0], (sm_rem << 1) >= 25'(sm_den)};

    // ---------------------------------------------------------------- pipeline idle
    logic pipe_idle;
    always_comb pipe_idle = (is_st == IS_IDLE) && !iss_go && !tk_m.v && !tk_o.v && !tk_d.v && !cap_v &&
                            !e1_v && !e2_v && !p0_v && !p1_v && !p2_v && !wr_v && !tr_busy;

    // ---------------------------------------------------------------- input copy and write mux
    logic        cp_v, cp_v1;
    logic [15:0] cp_e, cp_t, cp_f;
    logic [15:0] cp_t1, cp_f1;
    assign in_raddr = cp_e;
    assign in_valid = cp_v1;
    always_comb begin
        if (ld_act_we) begin
            act_we = ld_lane; act_waddr = ACT_AW'(ld_addr); act_wdata = {L{ld_data[16:0]}};
        end else if (cp_v1) begin
            act_we = L'(1) << (32'(cp_f1) % L);
            act_waddr = ACT_AW'(A_IN + 32'(cp_t1) * CBF + 32'(cp_f1) / L);
            act_wdata = {L{in_rdata[15], in_rdata}};
        end else begin
            act_we = act_we_e; act_waddr = act_waddr_e; act_wdata = act_wdata_e;
        end
    end

    // ---------------------------------------------------------------- sequencer
    typedef enum logic [4:0] {
        SQ_IDLE, SQ_COPY, SQ_SETUP, SQ_TAB, SQ_ISSUE, SQ_WAIT, SQ_ATT, SQ_DONE
    } sq_t;
    sq_t         sq;
    logic [4:0]  step;                       // position in the layer program
    logic [3:0]  layer;
    logic [15:0] att_r;                      // attention rows issued: scores(att_r), context(att_r-1)
    logic        att_phase;                  // 0: issue scores, 1: issue context
    logic [3:0]  att_h;
    logic [15:0] att_i, ctx_i;
    logic [3:0]  ctx_h;

    // program steps
    localparam logic [4:0] ST_IP = 5'd0, ST_PE = 5'd1, ST_Q = 5'd2, ST_K = 5'd3, ST_V = 5'd4, ST_ATT = 5'd5,
                           ST_O = 5'd6, ST_R1 = 5'd7, ST_N1 = 5'd8, ST_F1 = 5'd9, ST_F2 = 5'd10,
                           ST_R2 = 5'd11, ST_N2 = 5'd12, ST_POOL = 5'd13, ST_HEAD = 5'd14, ST_END = 5'd15,
                           ST_SKIP = 5'd16, ST_ADDO = 5'd17;   // v2 steps 16, 17

    // table indices of the current step
    function automatic logic [7:0] ai(input logic [3:0] l, input int k); // layer activation index
        ai = 8'(4 + 13 * 32'(l) + k);
    endfunction
    function automatic logic [7:0] ri(input logic [3:0] l, input int k); // layer requant index
        ri = 8'(2 + 12 * 32'(l) + k);
    endfunction
    function automatic logic signed [16:0] lo_of(input logic [4:0] b);
        lo_of = -(17'sd1 <<< (b - 5'd1));
    endfunction
    function automatic logic signed [16:0] hi_of(input logic [4:0] b);
        hi_of = (17'sd1 <<< (b - 5'd1)) - 17'sd1;
    endfunction
    function automatic logic signed [16:0] zx(input logic [15:0] z);
        zx = 17'($signed(z));
    endfunction

    // quantization-table reads of the setup microsequence: (step, layer, su) -> index, destination
    logic [2:0]  su;
    localparam logic [3:0] TD_NONE = 4'd0, TD_ZA = 4'd1, TD_Z2 = 4'd2, TD_ZY = 4'd3, TD_SZQ = 4'd4, TD_SZK = 4'd5,
                           TD_SZY = 4'd6, TD_CZV = 4'd7, TD_CP = 4'd8, TD_CZY = 4'd9;
    /* verilator lint_off UNUSEDSIGNAL */  // table indices are 8 bits; the tables use what they need
    logic [7:0]  tab_a_idx, tab_r_idx;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [3:0]  tab_a_dst;
    logic [7:0]  x_in;                        // activation index of the layer input
    always_comb x_in = (layer == 0) ? 8'd3 : ai(layer - 4'd1, 12);
    // table indices of the linear passes: input activation, output activation, weight, requant
    logic [7:0]  lin_xi, lin_yi, lin_ri;
    always_comb begin
        unique case (step)
            ST_Q: begin lin_xi = x_in; lin_yi = ai(layer, 0); lin_ri = ri(layer, 0); end
            ST_K: begin lin_xi = x_in; lin_yi = ai(layer, 1); lin_ri = ri(layer, 1); end
            ST_V: begin lin_xi = x_in; lin_yi = ai(layer, 2); lin_ri = ri(layer, 2); end
            ST_O: begin lin_xi = ai(layer, 5); lin_yi = ai(layer, 6); lin_ri = ri(layer, 5); end
            ST_F1: begin lin_xi = ai(layer, 8); lin_yi = ai(layer, 9); lin_ri = ri(layer, 8); end
            default: begin lin_xi = ai(layer, 9); lin_yi = ai(layer, 10); lin_ri = ri(layer, 9); end
        endcase
    end
    always_comb begin
        tab_a_idx = '0; tab_a_dst = TD_NONE; tab_r_idx = '0;
        unique case (step)
            ST_IP: begin
                tab_r_idx = 8'd0;
                if (su == 0) begin tab_a_idx = 8'd0; tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = 8'd1; tab_a_dst = TD_ZY; end
            end
            ST_PE: begin
                tab_r_idx = 8'd1;
                if (su == 0) begin tab_a_idx = 8'd1; tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = 8'd2; tab_a_dst = TD_Z2; end
                if (su == 2) begin tab_a_idx = 8'd3; tab_a_dst = TD_ZY; end
            end
            ST_Q, ST_K, ST_V, ST_O, ST_F1, ST_F2: begin
                tab_r_idx = lin_ri;
                if (su == 0) begin tab_a_idx = lin_xi; tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = lin_yi; tab_a_dst = TD_ZY; end
            end
            ST_R1, ST_R2: begin
                tab_r_idx = (step == ST_R1) ? ri(layer, 6) : ri(layer, 10);
                if (su == 0) begin tab_a_idx = (step == ST_R1) ? x_in : ai(layer, 8); tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = (step == ST_R1) ? ai(layer, 6) : ai(layer, 10); tab_a_dst = TD_Z2; end
                if (su == 2) begin tab_a_idx = (step == ST_R1) ? ai(layer, 7) : ai(layer, 11); tab_a_dst = TD_ZY; end
            end
            ST_N1, ST_N2: begin
                tab_r_idx = (step == ST_N1) ? ri(layer, 7) : ri(layer, 11);
                if (su == 0) begin tab_a_idx = (step == ST_N1) ? ai(layer, 7) : ai(layer, 11); tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = (step == ST_N1) ? ai(layer, 8) : ai(layer, 12); tab_a_dst = TD_ZY; end
            end
            ST_POOL: begin
                tab_r_idx = 8'(NRQ - 2);
                if (su == 0) begin tab_a_idx = ai(4'(LAYERS - 1), 12); tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = 8'(NACT - 2); tab_a_dst = TD_ZY; end
            end
            ST_HEAD: begin   // activation NACT-1 is output (v1) or head (v2)
                tab_r_idx = 8'(NRQ - 1);
                if (su == 0) begin tab_a_idx = 8'(NACT - 2); tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = 8'(NACT - 1); tab_a_dst = TD_ZY; end
            end
            ST_SKIP: begin   // input -> skip, requant skip
                tab_r_idx = 8'(NRQ);
                if (su == 0) begin tab_a_idx = 8'd0; tab_a_dst = TD_ZA; end
                if (su == 1) begin tab_a_idx = 8'(NACT); tab_a_dst = TD_ZY; end
            end
            ST_ADDO: begin   // head + skip -> output, requant output (m1, m2, n)
                tab_r_idx = 8'(NRQ + 1);
                if (su == 0) begin tab_a_idx = 8'(NACT + 1); tab_a_dst = TD_ZY; end
            end
            ST_ATT: begin
                tab_r_idx = (su == 0) ? ri(layer, 3) : ri(layer, 4);
                tab_a_dst = (su == 0) ? TD_SZQ : (su == 1) ? TD_SZK : (su == 2) ? TD_SZY :
                            (su == 3) ? TD_CZV : (su == 4) ? TD_CP : TD_CZY;
                tab_a_idx = (su == 0) ? ai(layer, 0) : (su == 1) ? ai(layer, 1) : (su == 2) ? ai(layer, 3) :
                            (su == 3) ? ai(layer, 2) : (su == 4) ? ai(layer, 4) : ai(layer, 5);
            end
            default: ;
        endcase
    end

    always_ff @(posedge clk) begin
        iss_go <= 1'b0;
        done <= 1'b0;
        sm_reset <= 1'b0;
        if (rst || abort) begin
            sq <= SQ_IDLE; busy <= 1'b0; cp_v <= 1'b0; cp_v1 <= 1'b0; iss_par <= 1'b0;
        end else begin
            cp_v1 <= cp_v; cp_t1 <= cp_t; cp_f1 <= cp_f;
            unique case (sq)
                SQ_IDLE: if (start) begin
                    busy <= 1'b1;
                    sq <= SQ_COPY;
                    cp_v <= 1'b1; cp_e <= '0; cp_t <= '0; cp_f <= '0;
                end
                SQ_COPY: begin
                    // input window -> ACT (row t, feature f), one element a cycle
                    if (cp_v) begin
                        cp_e <= cp_e + 16'd1;
                        if (32'(cp_f) == FEATURES - 1) begin cp_f <= '0; cp_t <= cp_t + 16'd1; end
                        else cp_f <= cp_f + 16'd1;
                        if (32'(cp_e) == WINDOW * FEATURES - 1) cp_v <= 1'b0;
                    end else if (!cp_v1) begin
                        sq <= SQ_SETUP; step <= ST_IP; layer <= '0;
                    end
                end
                SQ_SETUP: begin
                    // static pass parameters; the quantization tables follow in SQ_TAB
                    g_bias <= 1'b0; g_relu <= 1'b0; g_center <= 1'b1; g_dst <= DS_ACT;
                    g_a_stride <= 16'(CBD); g_d_stride <= 16'(CBD); g_lim <= 16'(D_MODEL);
                    g_rows <= 16'(WINDOW); g_cbs <= 16'(CBD);
                    g_za <= '0; g_m2 <= '0; g_flat <= 1'b0;
                    su <= '0;
                    sq <= SQ_TAB;
                    unique case (step)
                        ST_IP: begin
                            g_pk <= PK_LIN; g_k <= 16'(FEATURES); g_a_base <= 16'(A_IN); g_a_stride <= 16'(CBF);
                            g_w_base <= 16'(W_IP); g_b_base <= '0; g_bias <= 1'b1; g_d_base <= 16'(A_IP);
                        end
                        ST_PE: begin
                            g_pk <= PK_ADD; g_k <= 16'd2; g_a_base <= 16'(A_IP); g_x2_base <= 16'(A_PE);
                            g_d_base <= 16'(A_X);
                        end
                        ST_Q, ST_K, ST_V, ST_O, ST_F1, ST_F2: begin
                            logic [2:0] which;   // 0 q 1 k 2 v 3 o 4 ffn1 5 ffn2
                            which = (step == ST_Q) ? 3'd0 : (step == ST_K) ? 3'd1 : (step == ST_V) ? 3'd2 :
                                    (step == ST_O) ? 3'd3 : (step == ST_F1) ? 3'd4 : 3'd5;
                            g_pk <= PK_LIN; g_bias <= 1'b1; g_k <= 16'(D_MODEL);
                            g_a_base <= (step == ST_O) ? 16'(A_C) : (step == ST_F1) ? 16'(A_N1) :
                                        (step == ST_F2) ? 16'(A_F1) : 16'(A_X);
                            if (step == ST_F2) begin g_k <= 16'(FFN); g_a_stride <= 16'(CBFF); end
                            if (step == ST_F1) begin g_cbs <= 16'(CBFF); g_d_stride <= 16'(CBFF); g_lim <= 16'(FFN); g_relu <= 1'b1; end
                            g_w_base <= 16'(W_L0) + 16'(layer) * 16'(W_LAYER) + 16'(
                                        (which == 3'd4) ? 4 * CBD * D_MODEL + CBD :
                                        (which == 3'd5) ? 4 * CBD * D_MODEL + CBD + CBFF * D_MODEL :
                                        32'(which) * CBD * D_MODEL);
                            g_b_base <= 16'(B_L0) + 16'(layer) * 16'(B_LAYER) + 16'(
                                        (which == 3'd4) ? 5 * CBD : (which == 3'd5) ? 5 * CBD + CBFF : 32'(which) * CBD);
                            g_d_base <= (step == ST_Q) ? 16'(A_Q) : (step == ST_V) ? 16'(A_V) : (step == ST_O) ? 16'(A_O) :
                                        (step == ST_F1) ? 16'(A_F1) : (step == ST_F2) ? 16'(A_F2) : 16'd0;
                            if (step == ST_K) g_dst <= DS_KT;
                        end
                        ST_R1, ST_R2: begin
                            g_pk <= PK_ADD; g_k <= 16'd2;
                            g_a_base <= (step == ST_R1) ? 16'(A_X) : 16'(A_N1);
                            g_x2_base <= (step == ST_R1) ? 16'(A_O) : 16'(A_F2);
                            g_d_base <= (step == ST_R1) ? 16'(A_R1) : 16'(A_R2);
                        end
                        ST_N1, ST_N2: begin
                            g_pk <= PK_BN; g_k <= 16'd1; g_bias <= 1'b1;
                            g_a_base <= (step == ST_N1) ? 16'(A_R1) : 16'(A_R2);
                            g_d_base <= (step == ST_N1) ? 16'(A_N1) : 16'(A_X);
                            g_w_base <= 16'(W_L0) + 16'(layer) * 16'(W_LAYER) + 16'(
                                        (step == ST_N1) ? 4 * CBD * D_MODEL : 4 * CBD * D_MODEL + CBD + CBFF * D_MODEL + CBD * FFN);
                            g_b_base <= 16'(B_L0) + 16'(layer) * 16'(B_LAYER) + 16'((step == ST_N1) ? 4 * CBD : 5 * CBD + CBFF + CBD);
                        end
                        ST_POOL: begin
                            g_pk <= PK_POOL; g_k <= 16'(WINDOW); g_rows <= 16'd1; g_a_base <= 16'(A_X);
                            g_d_base <= 16'(A_PL);
                        end
                        ST_HEAD: begin   // v1: the output; v2: head, centered into ACT for the addition
                            g_pk <= PK_LIN; g_k <= 16'(D_MODEL); g_rows <= 16'd1; g_cbs <= 16'(CBP); g_lim <= 16'(HORIZON);
                            g_a_base <= 16'(A_PL); g_w_base <= 16'(W_HEAD); g_b_base <= 16'(B_HEAD); g_bias <= 1'b1;
                            g_dst <= skip ? DS_ACT : DS_OUT; g_center <= skip; g_d_base <= 16'(A_HD);
                        end
                        ST_SKIP: begin
                            g_pk <= PK_LIN; g_k <= 16'(WINDOW * FEATURES); g_rows <= 16'd1; g_cbs <= 16'(CBP); g_lim <= 16'(HORIZON);
                            g_a_base <= 16'(A_IN); g_flat <= 1'b1; g_w_base <= 16'(W_SKIP); g_b_base <= 16'(B_SKIP); g_bias <= 1'b1;
                            g_d_base <= 16'(A_SK);
                        end
                        ST_ADDO: begin
                            g_pk <= PK_ADD; g_k <= 16'd2; g_rows <= 16'd1; g_cbs <= 16'(CBP); g_lim <= 16'(HORIZON);
                            g_a_base <= 16'(A_HD); g_x2_base <= 16'(A_SK); g_dst <= DS_OUT; g_center <= 1'b0;
                        end
                        ST_ATT: begin
                            exp_base <= 16'(layer) * 16'd256;
                            att_r <= '0; att_phase <= 1'b0; att_h <= '0; att_i <= '0; ctx_h <= '0; ctx_i <= '0;
                            sm_reset <= 1'b1;
                        end
                        default: sq <= SQ_DONE;
                    endcase
                end
                SQ_TAB: begin
                    // one read of each quantization table a cycle (one read port each)
                    logic signed [16:0] zp, lo_b, hi_b;
                    zp = zx(qact_zp[QAW'(tab_a_idx)]);
                    lo_b = lo_of(qact_bits[QAW'(tab_a_idx)]);
                    hi_b = hi_of(qact_bits[QAW'(tab_a_idx)]);
                    unique case (tab_a_dst)
                        TD_ZA: g_za <= (step == ST_IP || step == ST_SKIP) ? zp : 17'sd0;   // only the raw input window is uncentered
                        TD_ZY: begin g_zy <= zp; g_lo <= lo_b; g_hi <= hi_b; end
                        TD_SZY: begin sc_zy <= zp; sc_lo <= lo_b; sc_hi <= hi_b; end
                        TD_CP: begin cx_plo <= lo_b; cx_pz <= zp; sm_r <= 9'(hi_b - lo_b); end
                        TD_CZY: begin cx_zy <= zp; cx_lo <= lo_b; cx_hi <= hi_b; end
                        default: ;
                    endcase
                    if (su == 3'd0) begin
                        if (step == ST_ATT) begin sc_m <= qm1[QRW'(tab_r_idx)]; sc_n <= qn[QRW'(tab_r_idx)]; end
                        else begin g_m1 <= qm1[QRW'(tab_r_idx)]; g_m2 <= qm2[QRW'(tab_r_idx)]; g_n <= qn[QRW'(tab_r_idx)]; end
                    end
                    if (su == 3'd1 && step == ST_ATT) begin cx_m <= qm1[QRW'(tab_r_idx)]; cx_n <= qn[QRW'(tab_r_idx)]; end
                    su <= su + 3'd1;
                    if (su == 3'd5) sq <= (step == ST_ATT) ? SQ_ATT : SQ_ISSUE;
                end
                SQ_ISSUE: begin
                    if (is_st == IS_IDLE && !iss_go) begin
                        iss_go <= 1'b1; iss_pk <= g_pk; iss_row <= '0; iss_head <= '0;
                        sq <= SQ_WAIT;
                    end
                end
                SQ_WAIT: begin
                    // a pass starts only when the previous one is written (parameters are shared)
                    if (pipe_idle) begin
                        sq <= SQ_SETUP;
                        if (step == ST_N2) begin
                            if (32'(layer) == LAYERS - 1) step <= ST_POOL;
                            else begin step <= ST_Q; layer <= layer + 4'd1; end
                        end else if (step == ST_HEAD) step <= skip ? ST_SKIP : ST_END;
                        else if (step == ST_ADDO) step <= ST_END;
                        else step <= step + 5'd1;
                    end
                end
                SQ_ATT: begin
                    // rows r = h*W + i: scores(r) then context(r-1); a context waits for its softmax
                    if (is_st == IS_IDLE && !iss_go) begin
                        if (!att_phase) begin
                            if (32'(att_r) < HEADS * WINDOW) begin
                                iss_go <= 1'b1; iss_pk <= PK_SCO; iss_row <= att_i; iss_head <= att_h;
                                iss_par <= att_r[0];
                                if (32'(att_i) == WINDOW - 1) begin att_i <= '0; att_h <= att_h + 4'd1; end
                                else att_i <= att_i + 16'd1;
                            end
                            att_phase <= 1'b1;
                        end else if (att_r == 0) begin
                            att_phase <= 1'b0; att_r <= 16'd1;
                        end else if (rows_ready >= att_r) begin
                            iss_go <= 1'b1; iss_pk <= PK_CTX;
                            iss_row <= ctx_i; iss_head <= ctx_h; iss_par <= ~att_r[0];
                            if (32'(ctx_i) == WINDOW - 1) begin ctx_i <= '0; ctx_h <= ctx_h + 4'd1; end
                            else ctx_i <= ctx_i + 16'd1;
                            att_phase <= 1'b0;
                            att_r <= att_r + 16'd1;
                            if (32'(att_r) == HEADS * WINDOW) sq <= SQ_WAIT;
                        end
                    end
                end
                SQ_DONE: begin
                    busy <= 1'b0; done <= 1'b1; sq <= SQ_IDLE;
                end
                default: sq <= SQ_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
