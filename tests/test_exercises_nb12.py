"""The homework's checkers (notebook 12): each answer worked out from MLflow, never stored.

Each cohort of the module's homework uses other data: its checkers must accept the answers of
the cohort chosen, and refuse another cohort's.
"""

from __future__ import annotations

import functools

import mlflow
import pytest
import sklearn
from exercise_support import (  # noqa: F401
    ODD_INPUTS,
    correct,
    finished_run,
    hint,
    learner_store,
    verdict,
)
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from helpers.data import load_trips, prepare_features
from helpers.exercises import nb12
from helpers.exercises.nb12 import (
    COHORTS,
    DEFAULT_COHORT,
    EXPERIMENT,
    MODEL,
    RMSE_TOLERANCE,
    check_question_1,
    check_question_2,
    check_question_3,
    check_question_4,
    check_question_5,
    check_question_6,
    choose_cohort,
    chosen_cohort,
    cohort_data,
)

OTHER_COHORTS = [name for name in COHORTS if name != DEFAULT_COHORT]


@pytest.fixture(autouse=True)
def default_cohort():
    """Every test starts, and leaves the checkers, on the default cohort."""
    assert chosen_cohort() == COHORTS[DEFAULT_COHORT]
    yield
    nb12._chosen = COHORTS[DEFAULT_COHORT]


@pytest.fixture
def homework(store):
    return mlflow.set_experiment(EXPERIMENT)


def test_the_cohorts_are_the_module_homeworks():
    assert DEFAULT_COHORT == "original"
    assert {name: (c.colour, c.year) for name, c in COHORTS.items()} == {
        "original": ("green", 2021),
        "2024": ("green", 2023),
        "2025": ("yellow", 2023),
    }


def test_choosing_a_cohort_says_what_it_uses(capsys):
    assert choose_cohort("2025") == COHORTS["2025"] == chosen_cohort()
    assert capsys.readouterr().out == (
        "Using cohort '2025' (the 2025 cohort's homework): yellow taxis, January 2023 (train), "
        "February 2023 (validation) and March 2023 (test).\n"
    )
    assert choose_cohort(2024) == COHORTS["2024"], "a year without quotes is understood"
    assert choose_cohort(" original ") == COHORTS["original"]
    for wrong in ("2023", "yellow", None, 2025.0, ""):
        with pytest.raises(ValueError) as error:
            choose_cohort(wrong)
        assert str(error.value) == (
            f"Unknown cohort {wrong!r}: choose 'original', '2024', '2025' (see the text above "
            "the cell)."
        )
    assert chosen_cohort() == COHORTS["original"], "a refused name changes nothing"


def test_question_1_the_installed_version_only(capsys):
    assert correct(verdict(capsys, check_question_1, mlflow.__version__))
    assert hint(verdict(capsys, check_question_1, None), "put the version")
    out = verdict(capsys, check_question_1, "2.22.0")  # the videos' version
    assert hint(out, "not the version this environment runs")
    assert mlflow.__version__ not in out  # the hint never gives the answer
    assert hint(verdict(capsys, check_question_1, sklearn.__version__), "not the version")
    assert hint(verdict(capsys, check_question_1, f"mlflow {mlflow.__version__}"), "not the")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_1, odd)), odd


def preprocess(files: int) -> str:
    with mlflow.start_run(run_name="preprocess") as run:
        for number in range(files):
            mlflow.log_text("x", f"preprocessed/file-{number}.pkl")
    return run.info.run_id


def test_question_2_counts_what_the_newest_preprocess_run_stores(capsys, homework):
    assert hint(verdict(capsys, check_question_2, 4), "no run named `preprocess`")
    assert hint(verdict(capsys, check_question_2, None), "put your answer in `answer_2`")
    preprocess(3)
    preprocess(4)  # the newest
    assert correct(verdict(capsys, check_question_2, 4))
    assert correct(verdict(capsys, check_question_2, "4"))
    out = verdict(capsys, check_question_2, 3)  # the older run's count
    assert hint(out, "count again what the run stores")
    assert hint(verdict(capsys, check_question_2, 5), "count again")
    assert hint(verdict(capsys, check_question_2, "four"), "should be a number")
    with mlflow.start_run(run_name="preprocess"):  # newest, logged elsewhere than the folder
        mlflow.log_text("x", "other/file.pkl")
    assert hint(verdict(capsys, check_question_2, 1), "holds no folder `preprocessed`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_2, odd)), odd


def test_question_3_reads_the_newest_autologged_forest(capsys, homework):
    assert hint(verdict(capsys, check_question_3, 2), "no run in"), "nothing autologged yet"
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0.0, 1.0, 2.0, 3.0]
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(run_name="a-forest-of-its-own"):
            RandomForestRegressor(n_estimators=2, min_samples_split=4, random_state=0).fit(X, y)
        out = verdict(capsys, check_question_3, 2)
        assert hint(out, "read the parameter"), "2 is not what that run recorded"
        assert hint(verdict(capsys, check_question_3, 4), "set `min_samples_split` itself")
        with mlflow.start_run(run_name="the-question's-forest"):
            RandomForestRegressor(n_estimators=2, random_state=0).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert correct(verdict(capsys, check_question_3, "2"))
    assert hint(verdict(capsys, check_question_3, 8), "read the parameter")
    assert hint(verdict(capsys, check_question_3, None), "put your answer in `answer_3`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_3, odd)), odd


def test_question_4_is_the_option_for_proxied_artifacts(capsys):
    assert correct(verdict(capsys, check_question_4, "--artifacts-destination"))
    assert correct(verdict(capsys, check_question_4, "artifacts-destination"))
    out = verdict(capsys, check_question_4, "--default-artifact-root")  # the older sibling
    assert hint(out, "exists but does something else") and "artifacts-destination" not in out
    assert hint(verdict(capsys, check_question_4, "--backend-store-uri"), "something else")
    assert hint(verdict(capsys, check_question_4, "artifact-store"), "has no option")
    assert hint(verdict(capsys, check_question_4, None), "put the option's name")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_4, odd)), odd


@functools.cache
def trial_rmses(cohort: str, alphas: tuple[float, ...] = (0.01, 1.0, 10.0)) -> dict:
    """alpha -> validation RMSE of the homework's Ridge on ``cohort``'s data."""
    _, data = cohort_data(COHORTS[cohort], "val")
    rmses = {}
    for alpha in alphas:
        model = Ridge(alpha=alpha, tol=1e-8).fit(*data["train"])
        rmses[alpha] = root_mean_squared_error(data["val"][1], model.predict(data["val"][0]))
    return rmses


def tuning(trials: dict, name: str = "ridge-tuning", log_alpha: bool = True) -> None:
    """A search run of trials (alpha -> rmse), each a child run, as the solution logs them."""
    with mlflow.start_run(run_name=name):
        for number, (alpha, rmse) in enumerate(trials.items()):
            params = {"alpha": alpha} if log_alpha else None
            finished_run(f"trial-{number:02d}", params=params, metrics={"rmse": rmse}, nested=True)


def test_question_5_takes_the_best_trial_of_the_newest_search_to_the_options_digits(
    capsys, homework
):
    assert hint(verdict(capsys, check_question_5, 6.3), "no run named `ridge-tuning`")
    rmses = trial_rmses(DEFAULT_COHORT)
    best = min(rmses.values())
    tuning({100.0: best - 0.3})  # an older search, better than the newest
    tuning(rmses)
    assert correct(verdict(capsys, check_question_5, best))
    assert correct(verdict(capsys, check_question_5, round(best, 2)))  # the options' digits
    assert hint(verdict(capsys, check_question_5, best - 0.3), "not the best trial's RMSE")
    for other in rmses.values():
        if other != best:  # the other trials
            assert hint(verdict(capsys, check_question_5, other), "not the best")
    # A module option one step away (the options differ by more than the tolerance):
    assert RMSE_TOLERANCE <= 0.1
    assert hint(verdict(capsys, check_question_5, best + 0.15), "not the best")
    assert hint(verdict(capsys, check_question_5, best - 0.15), "not the best")
    assert correct(verdict(capsys, check_question_5, best + 0.09))
    tuning({1.0: best + 0.5})  # a search whose RMSE its alpha does not give on these data
    out = verdict(capsys, check_question_5, best + 0.5)
    assert hint(out, "does not give that RMSE on February 2021 of cohort 'original'")
    tuning(rmses, log_alpha=False)
    assert hint(verdict(capsys, check_question_5, best), "logged no `alpha`")
    tuning({}, name="ridge-tuning")  # newest search, no trials logged as children
    assert hint(verdict(capsys, check_question_5, best), "has no trials")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_5, odd)), odd


@pytest.mark.parametrize("cohort", OTHER_COHORTS)
def test_question_5_follows_the_cohort(capsys, homework, cohort):
    """On cohort 2025, the default's answer is wrong, and so is a search run on its data."""
    default_best = min(trial_rmses(DEFAULT_COHORT).values())
    own = trial_rmses(cohort)
    choose_cohort(cohort)
    tuning(own)
    assert correct(verdict(capsys, check_question_5, round(min(own.values()), 3)))
    assert abs(default_best - min(own.values())) > 2 * RMSE_TOLERANCE
    assert hint(verdict(capsys, check_question_5, round(default_best, 3)), "not the best")
    tuning(trial_rmses(DEFAULT_COHORT))  # the default cohort's search, in this cohort's store
    out = verdict(capsys, check_question_5, round(default_best, 3))
    assert hint(out, f"on February 2023 of cohort '{cohort}'", "another cohort's data")
    choose_cohort(DEFAULT_COHORT)  # the learner switches back: that search is right again
    assert correct(verdict(capsys, check_question_5, round(default_best, 3)))


FEATURES = ["PU_DO", "trip_distance"]


@functools.cache
def cohort_months(cohort: str) -> tuple:
    """January, February and March of ``cohort``, prepared."""
    c = COHORTS[cohort]
    return tuple(prepare_features(load_trips(c.colour, c.year, m)) for m in (1, 2, 3))


def ridge_on_march(cohort: str) -> tuple[Ridge, DictVectorizer, float]:
    """The solution's champion for ``cohort``, its vectorizer and its RMSE on March."""
    train, _, march = cohort_months(cohort)
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[FEATURES].to_dict(orient="records"))
    ridge = Ridge(alpha=1.0, tol=1e-8).fit(X_train, train["duration"].values)
    X_march = dv.transform(march[FEATURES].to_dict(orient="records"))
    return ridge, dv, root_mean_squared_error(march["duration"].values, ridge.predict(X_march))


def register_champion(model, inputs) -> None:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=inputs[:3],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    version = mlflow.register_model(info.model_uri, MODEL)
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version.version)


def test_question_6_scores_the_champion_on_march_whatever_its_input(capsys, homework):
    assert hint(verdict(capsys, check_question_6, 6.3), "no `nyc-taxi-homework` model")
    train, val, march = cohort_months(DEFAULT_COHORT)
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[FEATURES].to_dict(orient="records"))
    X_march = dv.transform(march[FEATURES].to_dict(orient="records"))
    X_val = dv.transform(val[FEATURES].to_dict(orient="records"))
    ridge = Ridge(alpha=1.0, tol=1e-8).fit(X_train, train["duration"].values)
    register_champion(ridge, X_val)  # the solution's way: the matrix
    on_march = root_mean_squared_error(march["duration"].values, ridge.predict(X_march))
    on_val = root_mean_squared_error(val["duration"].values, ridge.predict(X_val))
    assert abs(on_march - on_val) > RMSE_TOLERANCE, "the months must tell the answers apart"
    assert correct(verdict(capsys, check_question_6, round(on_march, 3)))
    assert hint(verdict(capsys, check_question_6, round(on_val, 3)), "score your cohort's test")
    assert hint(verdict(capsys, check_question_6, on_march + 0.15), "not the champion's RMSE")
    assert hint(verdict(capsys, check_question_6, on_march - 0.15), "not the champion's RMSE")
    assert correct(verdict(capsys, check_question_6, on_march + 0.09))
    assert hint(verdict(capsys, check_question_6, None), "put your answer in `answer_6`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_6, odd)), odd

    rmse = assert_a_pipeline_champion_is_scored(capsys, train, march)

    renamed = train[FEATURES].rename(columns={"trip_distance": "miles"})
    register_champion(Ridge().fit(renamed[["miles"]], train["duration"]), renamed[["miles"]])
    out = verdict(capsys, check_question_6, round(rmse, 3))
    assert hint(out, "the champion asks for columns", "miles")

    narrow = Ridge().fit(X_train[:, :5], train["duration"].values)  # trained on 5 columns
    register_champion(narrow, X_val[:, :5])
    assert hint(verdict(capsys, check_question_6, 6.3), "could not predict March's trips")


def assert_a_pipeline_champion_is_scored(capsys, train, march) -> float:
    """A DataFrame pipeline champion (notebook 07's way) trained on ``train``: its RMSE on
    ``march`` is accepted. Returns that RMSE."""
    pipeline = Pipeline([
        ("route", ColumnTransformer([("PU_DO", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"])],
                                    remainder="passthrough")),
        ("ridge", Ridge(alpha=1.0, tol=1e-8)),
    ]).fit(train[FEATURES], train["duration"])  # fmt: skip
    register_champion(pipeline, train[FEATURES])
    rmse = root_mean_squared_error(march["duration"], pipeline.predict(march[FEATURES]))
    assert correct(verdict(capsys, check_question_6, round(rmse, 3)))
    return rmse


@pytest.mark.parametrize("cohort", OTHER_COHORTS)
def test_question_6_scores_the_champion_on_the_cohorts_march(capsys, homework, cohort):
    """On cohort 2025 the champion is scored on yellow March 2023: the default's answer,
    and this cohort's validation RMSE, are refused."""
    choose_cohort(cohort)
    ridge, dv, on_march = ridge_on_march(cohort)
    _, val, march = cohort_months(cohort)
    X_val = dv.transform(val[FEATURES].to_dict(orient="records"))
    register_champion(ridge, X_val)
    assert correct(verdict(capsys, check_question_6, round(on_march, 3)))
    default_answer = ridge_on_march(DEFAULT_COHORT)[2]
    assert abs(default_answer - on_march) > 2 * RMSE_TOLERANCE
    year = COHORTS[cohort].year
    out = verdict(capsys, check_question_6, round(default_answer, 3))
    assert hint(out, f"not the champion's RMSE on March {year} of cohort '{cohort}'")
    on_val = root_mean_squared_error(val["duration"].values, ridge.predict(X_val))
    if abs(on_val - on_march) > RMSE_TOLERANCE:
        assert hint(verdict(capsys, check_question_6, round(on_val, 3)), "not the champion's")

    train = cohort_months(cohort)[0]
    assert_a_pipeline_champion_is_scored(capsys, train, march)


@pytest.mark.notebooks
@pytest.mark.parametrize("cohort", OTHER_COHORTS)
def test_the_homework_runs_on_each_cohort_and_its_solutions_pass(cohort, tmp_path):
    """A solved copy of notebook 12 with only `COHORT` changed runs offline, top to bottom:
    the cohort cell names the cohort, and every solution passes its (cohort's) check."""
    from notebook_runs import NOTEBOOK_DIR
    from test_solutions import execute, solved_copy, text_of

    nb, answers = solved_copy(NOTEBOOK_DIR / "12_homework.ipynb")
    choosers = [c for c in nb.cells if c.cell_type == "code" and "COHORT = " in c.source]
    assert len(choosers) == 1, "one cell, and one only, chooses the cohort"
    chooser = choosers[0]
    assert chooser.source.count('COHORT = "original"') == 1
    chooser.source = chooser.source.replace('COHORT = "original"', f'COHORT = "{cohort}"')
    executed = execute(nb, tmp_path)
    errors = [o.evalue for c in executed.cells for o in c.get("outputs", []) if "evalue" in o]
    assert errors == []
    index = nb.cells.index(chooser)
    assert text_of(executed.cells[index], "stdout") == f"Using {COHORTS[cohort]}.\n"
    for number, cell_index in sorted(answers.items()):
        printed = text_of(executed.cells[cell_index], "stdout")
        verdicts = [line for line in printed.splitlines() if line.startswith("Correct: ")]
        assert len(verdicts) == 1 and "Not yet" not in printed, (number, printed[-1500:])
        assert text_of(executed.cells[cell_index], "stderr") == "", number
