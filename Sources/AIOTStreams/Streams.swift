// Per-sensor time-aligned windows (filled in by the daemon issue).
import AIOTModel
