"""Training and export of the model that ctc-edge serves (Python; nothing at serving time needs it).

Run each step as a module from the repository root, e.g. `python3 -m training.shard --help`:

  build_corpus      data/corpus/{train,val}.txt from Debian-packaged, PSF/MIT-licensed text
  train_tokenizer   SentencePiece BPE -> data/tokenizer/ (tokenizer.json) and data/tokens/*.bin
  train_base        the base language model -> checkpoints/base/
  distill           the base model's greedy continuations -> data/distill/
  train_heads       a draft head (--kind ctc | medusa)  -> checkpoints/<kind>/
  export_onnx       fp32 ONNX of the base model and the heads -> data/onnx/
  quantize          int8 ONNX (row-wise for the base model, dynamic for the heads)
  make_fixtures     parity fixtures for `npm test` and the benchmark prompts
  shard             model-shards/<name>/: manifest.json + content-hashed shards
  strip_checkpoint  a checkpoint without its optimizer state (for shipping)
  convert_hf        a Hugging Face Llama checkpoint -> checkpoint, export, int8 and model-shards/<name>/
  random_llama      a randomly initialised Llama checkpoint in the Hugging Face layout (tests, memory)
  train_all.sh      train_base -> distill -> train_heads in one go (budgets from env vars)

Libraries: model (PyTorch modules), common (device, data windows, checkpoints), ctc_tokenizer,
onnx_graph (ONNX graph builder), reference (PyTorch mirror of the quantized graph), safetensors
(reader / writer, numpy), progress (the long steps' progress bars).
"""
