// aiotd: the streaming daemon (see the daemon issue). Placeholder entry point until it lands.
import AIOTDaemon
print("aiotd: the daemon is not built yet")
