"""Reading weights files without unpickling code: headers and formats (`tensor_headers`, with
the one open handle a load goes through, `WeightsFile`) and the layouts authors publish in
(`published`). Torch-free, so the config checks judge a file before torch loads."""
