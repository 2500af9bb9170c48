// aiot_ice40_loader: VERIFY_PARAMS for the iCE40 core (docs/register-map.md §3.1, §6). CRC-32 of
// PARAM [0, PARAM_LENGTH), then the image is checked in place (the engine reads it from PARAM, so
// nothing is copied): header words against the synthesized shape, the activation bits (2..16,
// scores at most 8), every requant shift (<= 40), and every directory entry (element count of its
// tensor, 4-aligned offset, end inside the image). Error codes as the XC7S15 loader: 0x03 CRC,
// 0x04 header/shape/table. PARAM is 16 bits wide; one read every two cycles outside the CRC.
`resetall
`default_nettype none
module aiot_ice40_loader #(
    parameter int WINDOW = 24,
    parameter int FEATURES = 1,
    parameter int D_MODEL = 16,
    parameter int HEADS = 1,
    parameter int LAYERS = 1,
    parameter int HORIZON = 1,
    parameter int PARAM_BYTES = 32768,
    localparam int NACT = 6 + 13 * LAYERS,
    localparam int NWZ = 2 + 8 * LAYERS,
    localparam int NRQ = 4 + 12 * LAYERS,
    localparam int NT = 5 + 17 * LAYERS
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic        start,
    input  wire logic [31:0] length,
    input  wire logic [31:0] expected_crc,
    output      logic        busy,
    output      logic        done,
    output      logic        ok,
    output      logic [7:0]  err_code,
    output      logic [31:0] crc,
    output      logic        p_re,
    output      logic [13:0] p_addr,
    input  wire logic [15:0] p_rdata,
    output      logic [15:0] o_act, o_wt, o_rq, o_dir   // table offsets of the checked image (engine)
);
    typedef enum logic [2:0] {L_IDLE, L_CRC, L_HDR, L_ACT, L_RQ, L_DIR, L_FIN} st_t;
    st_t st;
    logic [15:0] b;                  // byte (CRC) / word / entry counter
    logic        rv, rb, ph;
    logic [31:0] crc_r, crc_n;
    aiot_crc32 u_crc (.crc_in(crc_r), .data(rb ? p_rdata[15:8] : p_rdata[7:0]), .crc_out(crc_n));
    logic        bad;
    logic [15:0] total, d_off;
    logic [1:0]  dw;                 // directory word 0..3
    logic [4:0]  sbits [8];
    logic [3:0]  layer;
    logic [4:0]  slot;
    // expected header word k (16-bit words); offsets (16, 20, 24, 28) and the total (6) are free
    function automatic logic [15:0] hdr(input logic [4:0] k);
        unique case (k)
            5'd0: hdr = 16'h4941; 5'd1: hdr = 16'h544F; 5'd2: hdr = 16'h5250; 5'd3: hdr = 16'h314D;
            5'd4: hdr = 16'd1; 5'd5: hdr = 16'd64;
            5'd8: hdr = 16'(WINDOW); 5'd9: hdr = 16'(FEATURES); 5'd10: hdr = 16'(D_MODEL); 5'd11: hdr = 16'(HEADS);
            5'd12: hdr = 16'(LAYERS); 5'd13: hdr = 16'(4 * D_MODEL); 5'd14: hdr = 16'(HORIZON);
            5'd18: hdr = 16'(NACT); 5'd22: hdr = 16'(NWZ); 5'd26: hdr = 16'(NRQ); 5'd30: hdr = 16'(NT);
            default: hdr = 16'd0;
        endcase
    endfunction
    function automatic logic hdr_free(input logic [4:0] k);
        hdr_free = k == 5'd6 || k == 5'd16 || k == 5'd20 || k == 5'd24 || k == 5'd28;
    endfunction
    // element count and log2 element size of tensor b (tensor order of §6.4); layer/slot track b
    logic [15:0] t_cnt;
    logic [1:0]  t_esz;
    always_comb begin
        t_esz = 2'd0; t_cnt = 16'(D_MODEL * D_MODEL);
        if (b == 16'd0) t_cnt = 16'(D_MODEL * FEATURES);
        else if (b == 16'd1) begin t_cnt = 16'(D_MODEL); t_esz = 2'd2; end
        else if (b == 16'd2) begin t_cnt = 16'(WINDOW * D_MODEL); t_esz = 2'd1; end
        else if (32'(b) == NT - 2) t_cnt = 16'(HORIZON * D_MODEL);
        else if (32'(b) == NT - 1) begin t_cnt = 16'(HORIZON); t_esz = 2'd2; end
        else unique case (slot)
            5'd0, 5'd2, 5'd4, 5'd6: ;
            5'd8: begin t_cnt = 16'd1 << sbits[layer[2:0]]; t_esz = 2'd1; end
            5'd9, 5'd15: t_cnt = 16'(D_MODEL);
            5'd11, 5'd13: t_cnt = 16'(4 * D_MODEL * D_MODEL);
            5'd12: begin t_cnt = 16'(4 * D_MODEL); t_esz = 2'd2; end
            default: begin t_cnt = 16'(D_MODEL); t_esz = 2'd2; end
        endcase
    end
    logic [17:0] t_end;
    always_comb t_end = 18'(d_off) + (18'(t_cnt) << t_esz);
    // PARAM_LENGTH, once checked against the capacity (<= 32 KiB), in 16 bits
    logic [15:0] len;
    always_comb len = (length > 32'(PARAM_BYTES)) ? 16'(PARAM_BYTES) : length[15:0];

    always_comb begin
        p_re = 1'b0; p_addr = b[14:1];
        unique case (st)
            L_CRC: p_re = b < len;
            L_HDR: begin p_re = !ph; p_addr = 14'(b); end
            L_ACT: begin p_re = !ph; p_addr = 14'((o_act >> 1) + (b << 1)); end
            L_RQ:  begin p_re = !ph; p_addr = 14'((o_rq >> 1) + (b << 2) + 16'd2); end
            L_DIR: begin p_re = !ph; p_addr = 14'((o_dir >> 1) + (b << 2) + 16'(dw)); end
            default: ;
        endcase
    end

    always_ff @(posedge clk) begin
        done <= 1'b0;
        rv <= 1'b0;
        if (rst) begin
            st <= L_IDLE; busy <= 1'b0;
        end else begin
            unique case (st)
                L_IDLE: if (start) begin
                    busy <= 1'b1; st <= L_CRC; b <= '0; crc_r <= 32'hFFFFFFFF;
                    bad <= length > 32'(PARAM_BYTES) || length < 32'd64;
                end
                L_CRC: begin
                    if (rv) crc_r <= crc_n;
                    if (b < len) begin rv <= 1'b1; rb <= b[0]; b <= b + 16'd1; end
                    else if (!rv) begin
                        crc <= ~crc_r;
                        if (~crc_r != expected_crc) begin st <= L_FIN; ok <= 1'b0; err_code <= 8'h03; end
                        else if (bad) begin st <= L_FIN; ok <= 1'b0; err_code <= 8'h04; end
                        else begin st <= L_HDR; b <= '0; ph <= 1'b0; end
                    end
                end
                L_HDR: begin
                    ph <= ~ph;
                    if (ph) begin
                        if (!hdr_free(b[4:0]) && p_rdata != hdr(b[4:0])) bad <= 1'b1;
                        if (hdr_free(b[4:0]) && (p_rdata[1:0] != 2'd0 || p_rdata > len)) bad <= 1'b1;
                        unique case (b[4:0])
                            5'd6: total <= p_rdata;
                            5'd16: o_act <= p_rdata;
                            5'd20: o_wt <= p_rdata;
                            5'd24: o_rq <= p_rdata;
                            5'd28: o_dir <= p_rdata;
                            default: ;
                        endcase
                        b <= b + 16'd1;
                        if (b == 16'd31) begin st <= L_ACT; b <= '0; end
                    end
                end
                L_ACT: begin
                    ph <= ~ph;
                    if (ph) begin
                        if (p_rdata[7:0] < 8'd2 || p_rdata[7:0] > 8'd16) bad <= 1'b1;
                        for (int l = 0; l < LAYERS; l++)
                            if (32'(b) == 4 + 13 * l + 3) begin
                                sbits[l] <= p_rdata[4:0];
                                if (p_rdata[7:0] > 8'd8) bad <= 1'b1;
                            end
                        b <= b + 16'd1;
                        if (32'(b) == NACT - 1) begin st <= L_RQ; b <= '0; end
                    end
                end
                L_RQ: begin
                    ph <= ~ph;
                    if (ph) begin
                        if (p_rdata[7:0] > 8'd40) bad <= 1'b1;
                        b <= b + 16'd1;
                        if (32'(b) == NRQ - 1) begin st <= L_DIR; b <= '0; dw <= '0; layer <= '0; slot <= '0; end
                    end
                end
                L_DIR: begin
                    ph <= ~ph;
                    if (ph) begin
                        dw <= dw + 2'd1;
                        unique case (dw)
                            2'd0: begin d_off <= p_rdata; if (p_rdata[1:0] != 2'd0) bad <= 1'b1; end
                            2'd2: if (p_rdata != t_cnt || t_end > 18'(total)) bad <= 1'b1;
                            default: if (p_rdata != 16'd0) bad <= 1'b1;      // high halves
                        endcase
                        if (dw == 2'd3) begin
                            b <= b + 16'd1;
                            if (b >= 16'd3 && 32'(b) < NT - 2) begin
                                if (slot == 5'd16) begin slot <= '0; layer <= layer + 4'd1; end
                                else slot <= slot + 5'd1;
                            end
                            if (32'(b) == NT - 1) begin
                                st <= L_FIN; ok <= !bad; err_code <= bad ? 8'h04 : 8'h00;
                            end
                        end
                    end
                end
                L_FIN: begin
                    busy <= 1'b0; done <= 1'b1; st <= L_IDLE;
                    if (bad) begin ok <= 1'b0; err_code <= (err_code == 8'h03) ? 8'h03 : 8'h04; end
                end
                default: st <= L_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
