"""Checkers for notebook 00's exercises: the four words of experiment tracking, and the pins."""

from __future__ import annotations

from importlib.metadata import version

from helpers.env import pinned_requirements
from helpers.exercises import Hint, checker, require

WORDS = ("experiment", "run", "artifact", "metadata")
_MEANING = {
    "experiment": "the question you are working on, which groups many attempts",
    "run": "one execution of training code, at one moment",
    "artifact": "a file that a run produces",
    "metadata": "a value recorded about a run: a parameter, a metric, a tag",
}
_EXPECTED = {
    "a model.pkl file": "artifact",
    "learning rate = 0.1": "metadata",
    "find the best churn model": "experiment",
    "last Tuesday's training of a random forest": "run",
}


@checker
def check_concepts(answers: dict[str, str | None]) -> str:
    """Each item matched to one of the four words; a wrong match gets the words' meanings."""
    require(
        isinstance(answers, dict) and set(answers) == set(_EXPECTED),
        "keep the dictionary's four items as they are, and give each a value.",
    )
    require(all(answers.values()), f"give each item one of: {', '.join(WORDS)}.")
    unknown = sorted({str(v) for v in answers.values()} - set(WORDS))
    require(not unknown, f"{unknown} is not one of: {', '.join(WORDS)}.")
    wrong = [item for item, word in answers.items() if word != _EXPECTED[item]]
    if wrong:
        reminders = "; ".join(f"{word} = {meaning}" for word, meaning in _MEANING.items())
        raise Hint(f"{len(wrong)} of 4 not right yet ({', '.join(wrong)}). Recall: {reminders}.")
    return "all four items matched."


@checker
def check_sklearn_versions(installed: str | None, pinned: str | None) -> str:
    """The installed and the pinned scikit-learn versions, as strings."""
    require(installed and pinned, "fill in both `installed` and `pinned` (strings).")
    require(
        installed == version("scikit-learn"),
        "`installed` is not what this environment has: ask importlib.metadata.version.",
    )
    require(
        pinned == pinned_requirements()["scikit-learn"],
        "`pinned` is not the version requirements.in pins: read it with pinned_requirements().",
    )
    same = "the same, as the setup check said" if installed == pinned else "different: rerun setup"
    return f"installed and pinned versions are {same}."
