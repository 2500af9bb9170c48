// aiot_crc32: one byte of CRC-32/ISO-HDLC (reflected 0xEDB88320), combinational.
// Callers start from 0xFFFFFFFF and invert the final value (docs/register-map.md §3.3).
`resetall
`default_nettype none
module aiot_crc32 (
    input  wire logic [31:0] crc_in,
    input  wire logic [7:0]  data,
    output      logic [31:0] crc_out
);
    always_comb begin
        crc_out = crc_in ^ {24'd0, data};
        for (int i = 0; i < 8; i++)
            crc_out = crc_out[0] ? ((crc_out >> 1) ^ 32'hEDB88320) : (crc_out >> 1);
    end
endmodule
`default_nettype wire
