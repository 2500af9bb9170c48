../../rtl/aiot_crc32.sv
../../rtl/aiot_spi.sv
../../rtl/aiot_top.sv
ice40_spram.sv
aiot_ice40_loader.sv
aiot_ice40_engine.sv
aiot_accel.sv
