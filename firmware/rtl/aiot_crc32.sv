// aiot_crc32: one byte of CRC-32/ISO-HDLC (reflected 0xEDB88320), combinational.
// Callers start from 0xFFFFFFFF and invert the final value (docs/register-map.md §3.3).
// Written as a function so no always_comb reads its own output (Icarus 11 loops on that).
`resetall
`default_nettype none
module aiot_crc32 (
    input  wire logic [31:0] crc_in,
    input  wire logic [7:0]  data,
    output      logic [31:0] crc_out
);
    function automatic logic [31:0] step(input logic [31:0] c0, input logic [7:0] d);
        logic [31:0] c;
        c = c0 ^ {24'd0, d};
        for (int i = 0; i < 8; i++) c = c[0] ? ((c >> 1) ^ 32'hEDB88320) : (c >> 1);
        step = c;
    endfunction
    assign crc_out = step(crc_in, data);
endmodule
`default_nettype wire
