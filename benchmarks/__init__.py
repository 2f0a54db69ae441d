"""scratchgen's benchmarks: each module compares scratchgen with peers measured in the same run."""
