"""A small word-level tokenizer for the tiny preset, built offline.

The real backbone uses T5's SentencePiece tokenizer, which cannot be
downloaded here. The tiny preset instead gets a word-level tokenizer over a
fixed vocabulary of toon-world prompt words ("a red robot and a blue cat walk
through a town at dusk"), built with the ``tokenizers`` library and wrapped in
a transformers fast tokenizer. It is saved as ``tokenizer.json`` and loaded
back with ``AutoTokenizer.from_pretrained(folder)``: the same code path as
T5's tokenizer. Special tokens follow T5: ``<pad>`` = 0, ``</s>`` = 1
(appended to every prompt), ``<unk>`` = 2. Text is lower-cased; unknown words
map to ``<unk>``.
"""

from __future__ import annotations

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")

TOON_WORDS = (
    # grammar
    "a an the and or with without of in on at to from into onto over under near behind beside between "
    "through across around along up down out off while as is are its their his her it they he she "
    "this that these those one two three four five many some very slowly quickly "
    # colors and shades
    "red orange yellow green blue purple pink brown black white gray grey gold silver cyan magenta teal "
    "beige navy violet dark light bright pale pastel colorful striped spotted shiny flat "
    # characters and objects
    "robot cat dog bird fish rabbit fox bear mouse frog duck horse dragon monster ghost girl boy woman "
    "man child kid friend hero witch wizard knight princess king queen pirate ninja alien person people "
    "ball balloon box car bike bicycle train boat ship plane rocket kite umbrella hat scarf cape bag "
    "book lamp flower flowers tree trees house houses door window fence bridge tower castle road "
    "street sign star stars moon sun cloud clouds rain snow wind fire water river lake sea wave waves "
    "rock rocks mountain mountains hill hills grass leaf leaves sky ground floor wall table chair bed "
    # scenes and times
    "town city village forest park garden beach desert field meadow room kitchen school shop market "
    "space night day dusk dawn morning evening noon sunset sunrise winter summer spring autumn "
    "background scene shot frame foreground sketch line lines drawing animation cartoon toon style "
    # actions
    "walk walks walking run runs running jump jumps jumping fly flies flying swim swims swimming "
    "dance dances dancing sit sits sitting stand stands standing look looks looking wave waves waving "
    "turn turns turning spin spins spinning roll rolls rolling fall falls falling float floats floating "
    "chase chases chasing play plays playing talk talks talking smile smiles smiling ride rides riding "
    "hold holds holding throw throws throwing move moves moving bounce bounces bouncing "
    # sizes and shapes
    "big small tiny large little tall short round square long wide circle triangle"
).split()

PUNCTUATION = (",", ".", "!", "?", "'", "-", ":", ";")


def toon_vocabulary() -> dict[str, int]:
    """Token -> id: special tokens first (T5 ids), then punctuation and words, duplicates removed."""
    tokens = list(dict.fromkeys((*SPECIAL_TOKENS, *PUNCTUATION, *TOON_WORDS)))
    return {token: index for index, token in enumerate(tokens)}


def build_toon_tokenizer(max_length: int) -> PreTrainedTokenizerFast:
    """The tiny preset's tokenizer; ``save_pretrained`` it and load it back with ``AutoTokenizer``."""
    vocabulary = toon_vocabulary()
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocabulary["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )
