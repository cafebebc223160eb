"""The inventory: which SIF images exist, how they are signed, and what they held at first sight.

It sits beside ``store`` (tables and queries over images) and above ``integrity`` (it reads
signatures); ``strategies`` reads it to decide what to do.
"""
