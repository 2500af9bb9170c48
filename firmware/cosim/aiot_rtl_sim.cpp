// aiot-rtl-sim: the accelerator RTL (Verilator model of aiot_top) behind a pipe, executing MPSSE
// command buffers for FT2232H channel A exactly as the chip would drive the pins
// (ADBUS0 SCK, ADBUS1 MOSI, ADBUS2 MISO, ADBUS3 ACC_CS_N, ADBUS5 GPIOL1 = BUSY). The FPGA is
// modelled as configured (DONE, INIT_B high); the flash on FLASH_CS_N is not modelled.
//
// Frames on stdin / stdout (little-endian):
//   request : 'X' u8 channel u32 length, then `length` MPSSE command bytes
//             'Q' quit
//   reply   : u8 status (0 ok, 1 error) u32 length, then the bytes the commands read
//             (status 1: the bytes are a UTF-8 error message)
// One request is one Transport.execute (one USB round trip). Channel B (the flash) is not part
// of the RTL and is refused. Statistics go to stderr at exit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Vaiot_top.h"
#include "verilated.h"

namespace {

#ifndef AIOT_CLK_NS
#define AIOT_CLK_NS 10                    // system clock period: 100 MHz (XC7S15); the iCE40 build uses 63
#endif

struct Sim {
    std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    std::unique_ptr<Vaiot_top> top{new Vaiot_top{ctx.get()}};
    uint64_t cycles = 0;
    int half_ns = 2 * AIOT_CLK_NS;        // SCK half period: clock/4 (25 MHz at 100 MHz) unless the host sets 0x86
    uint8_t low = 0x08;                   // last ADBUS value the host set (0x80)

    void clock() {                        // one system clock cycle (AIOT_CLK_NS)
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
        ++cycles;
    }
    void wait_ns(int ns) { for (int t = 0; t < ns; t += AIOT_CLK_NS) clock(); }
    void reset() {
        top->rst = 1; top->spi_cs_n = 1; top->spi_sck = 0; top->spi_mosi = 0;
        for (int i = 0; i < 8; ++i) clock();
        top->rst = 0;
        for (int i = 0; i < 8; ++i) clock();
    }
    void set_pins(uint8_t v) {
        low = v;
        top->spi_sck = v & 1; top->spi_mosi = (v >> 1) & 1; top->spi_cs_n = (v >> 3) & 1;
        top->eval(); wait_ns(AIOT_CLK_NS);
    }
    // ADBUS as 0x81 reads it (docs/board.md): the FPGA is configured, so DONE (bit 6) and
    // INIT_B (bit 7) read high; FLASH_CS_N (bit 4) reads back what the host drives.
    uint8_t pins() const {
        return (top->spi_sck & 1) | ((top->spi_mosi & 1) << 1) | ((top->spi_miso & 1) << 2) |
               ((top->spi_cs_n & 1) << 3) | (low & 0x10) | ((top->busy & 1) << 5) | 0x40 | 0x80;
    }
    // one SCK period, mode 0: MOSI valid before the rising edge, both sides sample on it
    int bit(int out) {
        if (out >= 0) top->spi_mosi = out;
        top->eval(); wait_ns(half_ns);
        top->spi_sck = 1; top->eval();
        int in = top->spi_miso & 1;
        wait_ns(half_ns);
        top->spi_sck = 0; top->eval();
        return in;
    }
};

bool read_exact(void* p, size_t n) { return fread(p, 1, n, stdin) == n; }

void reply(uint8_t status, const std::vector<uint8_t>& data) {
    uint32_t n = static_cast<uint32_t>(data.size());
    uint8_t hdr[5] = {status, uint8_t(n), uint8_t(n >> 8), uint8_t(n >> 16), uint8_t(n >> 24)};
    fwrite(hdr, 1, 5, stdout);
    if (n) fwrite(data.data(), 1, n, stdout);
    fflush(stdout);
}

void fail(const std::string& msg) { reply(1, std::vector<uint8_t>(msg.begin(), msg.end())); }

// Executes one MPSSE buffer; returns false with `err` set on a protocol error or a timeout.
bool execute(Sim& s, const std::vector<uint8_t>& cmd, std::vector<uint8_t>& out, std::string& err) {
    const uint64_t wait_limit = 2000000000ull / AIOT_CLK_NS;   // 2 s of device time for a wait-on-GPIO
    size_t i = 0;
    auto need = [&](size_t n) {
        if (i + n > cmd.size()) { err = "truncated MPSSE command"; return false; }
        return true;
    };
    while (i < cmd.size()) {
        uint8_t op = cmd[i++];
        switch (op) {
        case 0x80: if (!need(2)) return false; s.set_pins(cmd[i]); i += 2; break;
        case 0x82: if (!need(2)) return false; i += 2; break;
        case 0x81: out.push_back(s.pins()); break;
        case 0x83: out.push_back(0); break;
        case 0x10: case 0x11: case 0x31: case 0x34: case 0x20: case 0x24: {
            if (!need(2)) return false;
            size_t n = size_t(cmd[i]) + (size_t(cmd[i + 1]) << 8) + 1; i += 2;
            bool wr = op != 0x20 && op != 0x24, rd = op != 0x10 && op != 0x11;
            if (wr && !need(n)) return false;
            for (size_t k = 0; k < n; ++k) {
                uint8_t o = wr ? cmd[i + k] : 0, r = 0;
                for (int b = 7; b >= 0; --b) r |= uint8_t(s.bit(wr ? (o >> b) & 1 : -1) << b);
                if (rd) out.push_back(r);
            }
            if (wr) i += n;
            break;
        }
        case 0x12: case 0x13: case 0x33: case 0x36: case 0x22: case 0x26: {
            bool wr = op != 0x22 && op != 0x26, rd = op == 0x33 || op == 0x36 || op == 0x22 || op == 0x26;
            if (!need(wr ? 2 : 1)) return false;
            int n = cmd[i++] + 1; uint8_t o = wr ? cmd[i++] : 0, r = 0;
            for (int b = 0; b < n; ++b) r = uint8_t((r << 1) | s.bit(wr ? (o >> (7 - b)) & 1 : -1));
            if (rd) out.push_back(uint8_t(r << (8 - n)));
            break;
        }
        case 0x8E: if (!need(1)) return false; for (int b = 0; b <= cmd[i]; ++b) s.bit(-1); ++i; break;
        case 0x8F: {
            if (!need(2)) return false;
            size_t n = (size_t(cmd[i]) + (size_t(cmd[i + 1]) << 8) + 1) * 8; i += 2;
            for (size_t b = 0; b < n; ++b) s.bit(-1);
            break;
        }
        case 0x88: case 0x89: {           // wait until GPIOL1 (BUSY) is high / low
            int want = op == 0x88;
            uint64_t t0 = s.cycles;
            while ((s.top->busy & 1) != want) {
                s.clock();
                if (s.cycles - t0 > wait_limit) { err = "timeout: BUSY never changed (wait-on-GPIO)"; return false; }
            }
            break;
        }
        case 0x86: {
            if (!need(2)) return false;
            int div = cmd[i] | (cmd[i + 1] << 8); i += 2;
            double hz = 60e6 / ((1.0 + div) * 2.0);
            int h = int(1e9 / (2.0 * hz));
            // the RTL's byte synchronizers want SCK <= clock/4 (the ratio the SPI test bench runs)
            s.half_ns = h < 2 * AIOT_CLK_NS ? 2 * AIOT_CLK_NS : h;
            break;
        }
        case 0x87: case 0x8A: case 0x8B: case 0x8C: case 0x8D: case 0x84: case 0x85: case 0x96: case 0x97: break;
        case 0x9E: if (!need(2)) return false; i += 2; break;
        default: out.push_back(0xFA); out.push_back(op); break;   // MPSSE: bad command
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Sim s;
    s.ctx->commandArgs(argc, argv);
    s.reset();
    uint64_t frames = 0;
    for (;;) {
        uint8_t kind;
        if (!read_exact(&kind, 1) || kind == 'Q') break;
        if (kind != 'X') { fail("unknown request kind"); continue; }
        uint8_t hdr[5];
        if (!read_exact(hdr, 5)) break;
        uint32_t n = hdr[1] | (hdr[2] << 8) | (hdr[3] << 16) | (uint32_t(hdr[4]) << 24);
        std::vector<uint8_t> cmd(n);
        if (n && !read_exact(cmd.data(), n)) break;
        ++frames;
        if (hdr[0] != 0) { fail("channel B (flash) is not part of the accelerator RTL"); continue; }
        std::vector<uint8_t> out;
        std::string err;
        if (execute(s, cmd, out, err)) reply(0, out); else fail(err);
    }
    fprintf(stderr, "aiot-rtl-sim: %llu frames, %llu clock cycles simulated\n",
            (unsigned long long)frames, (unsigned long long)s.cycles);
    s.top->final();
    return 0;
}
