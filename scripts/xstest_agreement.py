"""Agreement of a refusal labeler with the XSTest authors' labels:
an alias of `rmlab xstest-agreement [labeler=judge]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("xstest_agreement")
