"""A small text module two test files share: titleize calls humanize, so a test of one covers both."""

TEXTKIT = '''\
def humanize(name: str) -> str:
    words = name.replace("_", " ").split()
    if not words:
        return ""
    return " ".join(words).capitalize()


def titleize(name: str) -> str:
    return " ".join(word.capitalize() for word in humanize(name).split())
'''
