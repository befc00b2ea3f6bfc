"""Checkers for the homework (notebook 13): one per question, each against what MLflow knows.

The module's homework changed with each cohort: other data, other questions, other options.
Each cohort here (:data:`COHORTS`) carries its own questions and options as its
``homework.md`` in the module's repository asks them (DataTalksClub/mlops-zoomcamp,
``cohorts/<year>/02-experiment-tracking/homework.md``), set against the course's seven steps.

Except for the server option, the expected answers are not stored here: each checker works its
answer out (from the installed MLflow, scikit-learn's defaults, the runs in the tracking store,
or the cohort's data), so the homework stays right when the data or the libraries change, with
the real TLC data too (``COURSE_DATA_SOURCE=tlc``).
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass

import mlflow
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error

from helpers.data import load_trips, prepare_features
from helpers.exercises import Hint, checker, close_to, newest_run, require

EXPERIMENT = "nyc-taxi-homework"
MODEL = "nyc-taxi-homework"
RMSE_TOLERANCE = 0.1
"""Module-style options for an RMSE are further apart than this: the nearest one is right."""

MONTHS = {"train": 1, "val": 2, "test": 3}
"""Every cohort trains on January, validates on February and tests on March of its data year."""
FEATURES = ["PU_DO", "trip_distance"]
HOMEWORK_FILE = "cohorts/{year}/02-experiment-tracking/homework.md"
"""Where each cohort's homework is, in DataTalksClub/mlops-zoomcamp."""
RF_PREFIX = "randomforestregressor__"
"""How autologging names the forest's parameters in the pipeline the course trains."""

VERSION, FILES, DV_SIZE = "version", "files", "dv_size"
PARAM_COUNT, MAX_DEPTH, MIN_SAMPLES_SPLIT = "param_count", "max_depth", "min_samples_split"
SERVER_OPTION, VAL_RMSE, TEST_RMSE, METADATA = "server_option", "val_rmse", "test_rmse", "metadata"


@dataclass(frozen=True)
class ModuleQuestion:
    """One question of a cohort's homework: its number there, its words, its options."""

    number: int
    kind: str
    text: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cohort:
    """One cohort's homework: its data, what it predicts, its questions."""

    name: str
    data_year: int
    target: str
    questions: dict[int, ModuleQuestion]
    """The course's question number (1-7) -> the question this cohort's homework asks there."""
    note: str = ""
    colour: str = "green"

    @property
    def homework(self) -> str:
        return HOMEWORK_FILE.format(year=self.name)

    @property
    def target_words(self) -> str:
        return "the trip's duration in minutes" if self.target == "duration" else "the tip in $"

    def asks(self, number: int) -> str:
        """What the course's question ``number`` asks of this cohort (one of the kinds above)."""
        return question_for(self, number).kind

    def __str__(self) -> str:
        y = self.data_year
        return (
            f"the {self.name} cohort's homework ({self.homework}): {self.colour} taxis, January "
            f"{y} (train), February {y} (validation) and March {y} (test); it predicts "
            f"{self.target_words}.{' ' + self.note if self.note else ''}"
        )


_Q1 = ModuleQuestion(1, VERSION, "What's the version that you have?")
_FILES = ModuleQuestion(
    2, FILES, "How many files were saved to OUTPUT_FOLDER?", ("1", "3", "4", "7")
)
_SERVER = ModuleQuestion(
    4,
    SERVER_OPTION,
    "In addition to `backend-store-uri`, what else do you need to pass to properly configure "
    "the server?",
    ("default-artifact-root", "serve-artifacts", "artifacts-only", "artifacts-destination"),
)
_METADATA_2023 = ModuleQuestion(
    6,
    METADATA,
    "What information does the model registry contain about each model?",
    ("Version number", "Source experiment", "Model signature", "All the above answers are correct"),
)
_BEST_VAL = "What's the best validation RMSE that you got?"
_BEST_TEST = "What is the test RMSE of the best model?"


def _questions_2024() -> dict[int, ModuleQuestion]:
    return {
        1: _Q1,
        2: _FILES,
        3: ModuleQuestion(
            3, MIN_SAMPLES_SPLIT, "What is the value of the `min_samples_split` parameter:",
            ("2", "4", "8", "10"),
        ),
        4: _SERVER,
        5: ModuleQuestion(5, VAL_RMSE, _BEST_VAL, ("4.817", "5.335", "5.818", "6.336")),
        6: ModuleQuestion(6, TEST_RMSE, _BEST_TEST, ("5.060", "5.567", "6.061", "6.568")),
    }  # fmt: skip


COHORTS = {
    "2022": Cohort("2022", 2021, "duration", {
        1: _Q1,
        2: _FILES,
        3: ModuleQuestion(3, PARAM_COUNT, "How many parameters are automatically logged by "
                          "MLflow?", ("19", "17", "10", "20")),
        4: _SERVER,
        5: ModuleQuestion(5, VAL_RMSE, _BEST_VAL, ("6.128", "6.628", "7.128", "7.628")),
        6: ModuleQuestion(6, TEST_RMSE, _BEST_TEST, ("6.1", "6.55", "7.93", "15.1")),
    }, "The data of the module's videos."),
    "2023": Cohort("2023", 2022, "tip_amount", {
        1: _Q1,
        2: ModuleQuestion(2, DV_SIZE, "So what's the size of the saved `DictVectorizer` file?",
                          ("54 kB", "154 kB", "54 MB", "154 MB")),
        3: ModuleQuestion(3, MAX_DEPTH, "What is the value of the `max_depth` parameter:",
                          ("4", "6", "8", "10")),
        5: ModuleQuestion(4, VAL_RMSE, _BEST_VAL, ("1.85", "2.15", "2.45", "2.85")),
        6: ModuleQuestion(5, TEST_RMSE, _BEST_TEST, ("1.885", "2.185", "2.555", "2.955")),
        7: _METADATA_2023,
    }),
    "2024": Cohort("2024", 2023, "duration", _questions_2024()),
    "2025": Cohort("2025", 2023, "duration", _questions_2024(),
                   "The same data and questions as 2024's."),
}  # fmt: skip
"""The module's homework cohorts for this module, each as its ``homework.md`` asks it.

2025's homework text first said yellow taxis; the module corrected it to green (its issue
#371, pull request #373): its scripts read ``lpep_*`` green-taxi files.
"""
BORROWED = {4: ("2024", "2023"), 7: ("2023", "2022, 2024 and 2025")}
"""A course question a cohort's homework does not ask: whose wording it borrows, who lacks it."""
DEFAULT_COHORT = "2025"
_chosen = COHORTS[DEFAULT_COHORT]


def question_for(cohort: Cohort, number: int) -> ModuleQuestion:
    """The question the course asks as ``number`` for ``cohort``: its own, else the borrowed one."""
    if number in cohort.questions:
        return cohort.questions[number]
    return COHORTS[BORROWED[number][0]].questions[number]


def choose_cohort(name: object) -> Cohort:
    """Make ``name`` the cohort whose data and questions the checkers use; say so; return it."""
    global _chosen
    key = str(name).strip() if isinstance(name, str | int) and not isinstance(name, bool) else name
    if key not in COHORTS:
        raise ValueError(
            f"Unknown cohort {name!r}: choose {', '.join(map(repr, COHORTS))}, the year of your "
            "cohort (see the text above the cell)."
        )
    _chosen = COHORTS[key]
    print(f"Using {_chosen}")
    return _chosen


def chosen_cohort() -> Cohort:
    """The cohort the checkers use: the one chosen last, else the default."""
    return _chosen


def ask(number: int) -> None:
    """Print the chosen cohort's question ``number`` as its homework asks it, with its options."""
    cohort = chosen_cohort()
    if number in cohort.questions:
        asked = cohort.questions[number]
        print(f"The {cohort.name} homework, question {asked.number}:")
    else:
        lender, _ = BORROWED[number]
        asked = question_for(cohort, number)
        print(
            f"The {cohort.name} homework does not ask this; the course asks it as the {lender} "
            f"homework's question {asked.number}:"
        )
    print(asked.text)
    if asked.options:
        print("Options:", " / ".join(asked.options))
    if asked.kind in (VAL_RMSE, TEST_RMSE):
        print(
            "These options are for the module's random forest search on the real TLC files. "
            "This course's Ridge search gives other numbers: report yours (the check recomputes "
            "it), and pick the nearest option on the module's form."
        )
    if asked.kind == PARAM_COUNT:
        print("(The options are of 2022's scikit-learn: count what your run shows.)")


def cohort_data(cohort: Cohort, split: str) -> tuple[dict, dict]:
    """The trips of January and of ``split`` for ``cohort``, and each one's ``(X, y)`` made
    as the homework's question 2 makes them (a DictVectorizer fitted on January).

    Kept for the next check while the data settings stay the same: a learner checks an
    answer several times, and a month of real trips takes a while to prepare.
    """
    settings = tuple(os.environ.get(name) for name in ("COURSE_DATA_SOURCE", "COURSE_SAMPLE_TRIPS"))
    return _cohort_data(cohort.name, split, settings)


@functools.lru_cache(maxsize=2)
def _cohort_data(name: str, split: str, settings: tuple) -> tuple[dict, dict]:
    cohort = COHORTS[name]
    frames = {
        part: prepare_features(load_trips(cohort.colour, cohort.data_year, MONTHS[part]))
        for part in ("train", split)
    }
    dv = DictVectorizer().fit(frames["train"][FEATURES].to_dict(orient="records"))
    matrices = {
        part: (dv.transform(frame[FEATURES].to_dict(orient="records")), frame[cohort.target].values)
        for part, frame in frames.items()
    }
    return frames, matrices


def _newest_run(name: str) -> mlflow.entities.Run:
    found = newest_run(name, experiment_names=[EXPERIMENT])
    if found is None:
        raise Hint(f"no run named `{name}` in `{EXPERIMENT}` yet: do that step first.")
    return found


def _number(answer: object, question: int) -> float:
    require(answer is not None, f"put your answer in `answer_{question}` and run the cell.")
    if isinstance(answer, bool):
        raise Hint(f"`answer_{question}` should be a number, not {answer!r}.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Hint(f"`answer_{question}` should be a number, not {answer!r}.") from None
    require(math.isfinite(value), f"`answer_{question}` should be a number, not {answer!r}.")
    return value


def _nearest_option(options: tuple[str, ...], value: float) -> float:
    """The option (as a number) nearest ``value``: the module says to pick the closest one."""
    return min((float(option) for option in options), key=lambda option: abs(option - value))


@checker
def check_question_1(answer: str | None) -> str:
    """The MLflow version, as `mlflow --version` or `mlflow.__version__` shows it."""
    require(answer, "put the version (a string such as '1.2.3') in `answer_1`.")
    require(
        str(answer).strip() == mlflow.__version__,
        "that is not the version this environment runs: ask `mlflow.__version__`, or "
        "`mlflow --version` in a terminal with the course environment active.",
    )
    return "that is the MLflow this environment runs."


def _preprocess_artifacts() -> list:
    run = _newest_run("preprocess")
    stored = mlflow.MlflowClient().list_artifacts(run.info.run_id, "preprocessed")
    require(stored, "the `preprocess` run holds no folder `preprocessed`: log the folder there.")
    return stored


@checker
def check_question_2(answer: object) -> str:
    """The files of the newest `preprocess` run: how many (most cohorts) or the vectorizer's
    size (2023)."""
    if chosen_cohort().asks(2) == DV_SIZE:
        return _check_dv_size(answer)
    count = _number(answer, 2)
    stored = _preprocess_artifacts()
    require(
        count == len(stored),
        "count again what the run stores, not what you meant to save: list the run's "
        "artifacts under `preprocessed` with MlflowClient().list_artifacts.",
    )
    return f"the run holds {len(stored)} artifacts."


UNITS = {"b": 1, "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000}
SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?b)?\s*$", re.IGNORECASE)


def parse_size(answer: object) -> float:
    """A size in bytes from a number of bytes or a text such as ``'154 kB'`` (1 kB = 1,000 B)."""
    require(answer is not None, "put your answer in `answer_2` and run the cell.")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        require(math.isfinite(answer) and answer > 0, f"{answer!r} is not a file size.")
        return float(answer)
    found = SIZE.match(answer) if isinstance(answer, str) else None
    require(
        found and found.group(2),
        f"`answer_2` should be a size such as '12 kB' or a number of bytes, not {answer!r}.",
    )
    return float(found.group(1)) * UNITS[found.group(2).lower()]


def _check_dv_size(answer: object) -> str:
    size = parse_size(answer)
    stored = {os.path.basename(a.path): a for a in _preprocess_artifacts()}
    require(
        "dv.pkl" in stored,
        "the `preprocess` run holds no `preprocessed/dv.pkl`: save the vectorizer as `dv.pkl`.",
    )
    actual = stored["dv.pkl"].file_size
    options = [parse_size(option) for option in COHORTS["2023"].questions[2].options]
    nearest = min(options, key=lambda option: abs(math.log(option / actual)))
    require(
        abs(size - actual) <= 0.15 * actual or size == nearest,
        "that is not the size of the vectorizer the run stores: read `file_size` of "
        "`preprocessed/dv.pkl` in the run's artifacts (MlflowClient().list_artifacts), not "
        "another file's.",
    )
    return f"the run's `dv.pkl` holds {actual:,} bytes (1 kB is 1,000 bytes)."


def _autologged_forest() -> tuple[dict, mlflow.entities.Run]:
    """The forest parameters autologging recorded in the newest run that has them."""
    for run in mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        order_by=["attributes.start_time DESC"],
        max_results=50,
        output_format="list",
    ):
        keys = [key for key in run.data.params if key.endswith("min_samples_split")]
        if keys:
            prefix = keys[0].removesuffix("min_samples_split")
            forest = {
                key.removeprefix(prefix): value
                for key, value in run.data.params.items()
                if key.startswith(prefix) and "__" not in key.removeprefix(prefix)
            }
            return forest, run
    raise Hint(
        f"no run in `{EXPERIMENT}` has an autologged forest yet: train it with "
        "`mlflow.sklearn.autolog()` on, inside a run, then read the run's parameters."
    )


@checker
def check_question_3(answer: object) -> str:
    """What autologging recorded for the forest: a parameter's value, or how many (2022)."""
    kind = chosen_cohort().asks(3)
    value = _number(answer, 3)
    forest, run = _autologged_forest()
    if kind == PARAM_COUNT:
        expected = len(RandomForestRegressor().get_params())
        require(
            value == len(forest),
            "count the forest's parameters in the autologged run (in a pipeline they are "
            "named `<step>__<parameter>`: count those of the forest's step only).",
        )
        require(
            value == expected,
            f"run {run.info.run_name!r} is not a plain RandomForestRegressor: train the "
            "question's forest with autologging on, and count what it recorded.",
        )
        return (
            f"autologging records every parameter of the forest, {expected} in today's "
            "scikit-learn: 2022's answer was 17, and scikit-learn 1.4 added `monotonic_cst`, "
            "so none of the module's options fits any more; on its form, 17 was the one."
        )
    name = kind
    recorded = forest.get(name)
    require(
        recorded not in (None, "None", "") and value == float(recorded),
        f"read the parameter from the autologged run: in a pipeline its name is `<step>__{name}`.",
    )
    if name == MIN_SAMPLES_SPLIT:
        require(
            value == RandomForestRegressor().get_params()[name],
            f"run {run.info.run_name!r} set `min_samples_split` itself: train exactly the "
            "forest the question gives, and read what autologging recorded for it.",
        )
        return "autologging recorded the default, since the code never set it."
    require(
        value == 10,
        f"run {run.info.run_name!r} set another `max_depth`: train exactly the forest the "
        "question gives (`max_depth=10`), and read what autologging recorded.",
    )
    return "autologging recorded the value the code set."


@checker
def check_question_4(answer: str | None) -> str:
    """The `mlflow server` option for where a server stores the artifacts it proxies."""
    require(answer, "put the option's name in `answer_4`, for example 'some-option'.")
    from mlflow.cli import server as server_command  # here: MLflow's command line is slow to import

    options = {o.lstrip("-") for p in server_command.params for o in p.opts}
    flag = str(answer).strip().lstrip("-")
    require(
        flag in options, f"`mlflow server` has no option `--{flag}`: see `mlflow server --help`."
    )
    require(
        flag == "artifacts-destination",
        f"`--{flag}` exists but does something else: read its help text, and look for the "
        "option about where *proxied* artifacts are stored.",
    )
    return "that is where a server stores the artifacts it receives (proxied)."


def _refit_rmse(cohort: Cohort, alpha: float, split: str) -> float:
    _, data = cohort_data(cohort, split)
    model = Ridge(alpha=alpha, tol=1e-8).fit(*data["train"])
    return root_mean_squared_error(data[split][1], model.predict(data[split][0]))


@checker
def check_question_5(answer: float | None) -> str:
    """The best validation RMSE among the newest tuning run's trials, to the options' digits."""
    value = _number(answer, 5)
    tuning = _newest_run("ridge-tuning")
    trials = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.mlflow.parentRunId = '{tuning.info.run_id}'",
        order_by=["metrics.rmse ASC"],
        max_results=1,
    )
    require(len(trials), "the `ridge-tuning` run has no trials: log each one as a child run.")
    best = trials["metrics.rmse"].iloc[0]
    require(
        close_to(value, best, RMSE_TOLERANCE),
        "not the best trial's RMSE: search the tuning run's child runs "
        "(tags.mlflow.parentRunId) sorted by metrics.rmse.",
    )
    alpha = trials.get("params.alpha")
    require(
        alpha is not None and alpha.notna().iloc[0],
        "the best trial logged no `alpha`: log each trial's `alpha` with mlflow.log_param, "
        "so that the run says which model it scored.",
    )
    cohort = chosen_cohort()
    rmse = _refit_rmse(cohort, float(alpha.iloc[0]), "val")
    require(
        close_to(value, rmse, RMSE_TOLERANCE),
        f"the best trial's `alpha` does not give that RMSE on February {cohort.data_year} of "
        f"the {cohort.name} cohort ({cohort.target_words}): was the search run on another "
        "cohort's data? Run questions 2 and 5 again after choosing your cohort.",
    )
    return "the best trial's validation RMSE, as the store has it." + _options_note(
        cohort, 5, value
    )


def _options_note(cohort: Cohort, number: int, value: float) -> str:
    """Which of the module's options a learner would pick, said only where one fits."""
    options = question_for(cohort, number).options
    nearest = _nearest_option(options, value)
    if abs(nearest - value) <= RMSE_TOLERANCE:
        return f" On the module's form: {nearest:g}."
    return (
        " None of the module's options is near it: they are for its random forest on the real "
        "files (COURSE_DATA_SOURCE=tlc and the module's own scripts)."
    )


@checker
def check_question_6(answer: float | None) -> str:
    """The champion's RMSE on March, recomputed here by loading the model by its alias."""
    value = _number(answer, 6)
    champion = _champion()
    cohort = chosen_cohort()
    rmse = _rmse_on_march(champion, cohort)
    require(
        close_to(value, rmse, RMSE_TOLERANCE),
        f"not the champion's RMSE on March {cohort.data_year} of the {cohort.name} cohort "
        f"({cohort.target_words}): load it by alias (models:/<name>@champion) and score your "
        "cohort's test month, not its validation one.",
    )
    return "the champion's RMSE on March, loaded by its alias." + _options_note(cohort, 6, value)


def _champion() -> mlflow.pyfunc.PyFuncModel:
    try:
        return mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    except mlflow.exceptions.MlflowException:
        raise Hint(f"no `{MODEL}` model with a `champion` alias yet: register it first.") from None


def _rmse_on_march(champion: mlflow.pyfunc.PyFuncModel, cohort: Cohort) -> float:
    """The champion's RMSE on the cohort's March, given the input it was logged with.

    A model logged on DictVectorizer's matrix (as the solution does) gets that matrix; a
    pipeline logged on a DataFrame (as notebook 07 teaches) gets the columns its signature names.
    """
    frames, data = cohort_data(cohort, "test")
    test = frames["test"]
    schema = champion.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        columns = schema.input_names()
        missing = sorted(set(columns) - set(test.columns))
        require(
            not missing,
            f"the champion asks for columns the trips do not have ({missing}): register a model "
            "trained on the homework's features.",
        )
        inputs = test[columns]
    else:
        inputs = data["test"][0]
    try:
        predictions = champion.predict(inputs)
    except Exception as error:  # noqa: BLE001 - any failure becomes a hint, not a traceback
        raise Hint(
            f"the champion could not predict March's trips ({type(error).__name__}): register a "
            "model trained on `PU_DO` and `trip_distance`, with an input example."
        ) from None
    return root_mean_squared_error(test[cohort.target].values, predictions)


def _option_chosen(answer: object, options: tuple[str, ...]) -> str:
    """The option a learner means: its text (any case, or its start), or its place (1-4)."""
    require(answer is not None, "put your answer in `answer_7` and run the cell.")
    if isinstance(answer, int) and not isinstance(answer, bool) and 1 <= answer <= len(options):
        return options[answer - 1]
    text = str(answer).strip().lower() if isinstance(answer, str) else ""
    matches = [option for option in options if text and option.lower().startswith(text)]
    require(
        len(matches) == 1,
        f"`answer_7` should be one of the options ({' / '.join(options)}), not {answer!r}.",
    )
    return matches[0]


@checker
def check_question_7(answer: object) -> str:
    """What the registry holds about the champion, checked on the champion itself."""
    options = _METADATA_2023.options
    chosen = _option_chosen(answer, options)
    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(MODEL, "champion")
    except mlflow.exceptions.MlflowException:
        raise Hint(f"no `{MODEL}` model with a `champion` alias yet: register it first.") from None
    require(
        version.run_id,
        "the champion's version names no source run: register it from a run "
        "(`create_model_version(..., run_id=...)`, or `register_model` of a `runs:/` URI).",
    )
    signature = mlflow.models.get_model_info(version.source).signature
    require(
        signature is not None,
        "your champion has no signature, so the registry cannot show one: log the model "
        "with an `input_example`, register that version, and look again.",
    )
    require(
        chosen == options[-1],
        f"the registry shows that, and more: open version {version.version} of `{MODEL}` in "
        "the UI (or `client.get_model_version_by_alias`) and look for each option.",
    )
    experiment = mlflow.get_experiment(mlflow.get_run(version.run_id).info.experiment_id)
    return (
        f"version {version.version}, its source run in experiment {experiment.name!r}, and the "
        "model's signature: the registry holds all three."
    )
