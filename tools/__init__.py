"""Tools run beside the product: the fuzzer, newman, the dependency audit."""
