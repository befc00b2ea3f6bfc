"""Quizzes: "Check your understanding" for notebooks 01-12, one explanation per option.

Why: the module's most common mistakes are conceptual (the UI started in another folder,
autologging turned on after ``fit``, the name of a deleted experiment reused, ...). Each lesson
notebook ends with a few questions on its ideas, and **every** option, right or wrong, has its
own explanation: why it is right, or the misconception behind it.

In a notebook the questions are a markdown cell and the answers go into one code cell::

    quiz("01", q1="b", q2=None, q3=None)

which prints, for each answered question, ``Correct: <why>`` or ``Not yet: <what that option
misses>``. With no answer it only says how to answer: Run All, and so a notebook's stored
output, reveals nothing. The course's website cannot run Python: there each option's
explanation is folded under it (``site_markdown``). ``tools/insert_quizzes.py`` writes the two
cells into the notebooks from this data (``notebook_cells``); tests/test_quizzes.py tries every
option of every question.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

__all__ = ["Option", "Question", "QUIZZES", "quiz", "notebook_cells", "site_markdown"]


@dataclass(frozen=True)
class Option:
    """One answer a learner may pick, and why it is right or what it misses."""

    text: str
    why: str


@dataclass(frozen=True)
class Question:
    """A question, its options by letter (``a``, ``b``, ...), and the letter that is right."""

    text: str
    answer: str
    options: dict[str, Option]


def question(text: str, answer: str, *options: Option) -> Question:
    """A question whose options get the letters a, b, c, ... in the order given."""
    return Question(text, answer, dict(zip(string.ascii_lowercase, options, strict=False)))


QUIZZES: dict[str, list[Question]] = {
    "01": [
        question(
            "Your notebooks, in `notebooks/`, log to `sqlite:///mlflow.db`. In a terminal opened "
            "in the course folder (the folder above `notebooks/`) you run "
            "`mlflow ui --backend-store-uri sqlite:///mlflow.db`. The UI opens and shows no runs. "
            "Why?",
            "b",
            Option(
                "The UI needs a while to read the runs: refresh the page later.",
                "the UI reads the database each time a page asks, so there is nothing to wait "
                "for once the page answers. The runs are not in the file it opened.",
            ),
            Option(
                "Three slashes make the path relative to the folder the command runs in: the UI "
                "opened (and created) another, empty `mlflow.db` in the course folder.",
                "`sqlite:///mlflow.db` is `mlflow.db` of the current folder. Start the UI from "
                "`notebooks/`, or give the absolute path with four slashes "
                "(`sqlite:////full/path/to/notebooks/mlflow.db`).",
            ),
            Option(
                "The notebook's kernel keeps `mlflow.db` locked, so the UI cannot read it.",
                "SQLite lets several processes read one file, and the course runs the UI while "
                "notebooks log. The UI is not blocked: it is reading another file.",
            ),
            Option(
                "A run shows in the UI only after the kernel that logged it has stopped.",
                "each value is written to the database when it is logged; the UI shows a run "
                "while it is still running. Look at which file the UI opened.",
            ),
        ),
        question(
            "A script started in a folder `reports/` calls "
            '`mlflow.set_tracking_uri("sqlite:////data/mlflow.db")` (four slashes: an absolute '
            "path), then creates a new experiment and logs a plot. Where does the plot go?",
            "b",
            Option(
                "To `/data/mlruns/<experiment id>/...`, next to the database.",
                "nothing ties the artifact store to the database's folder. Without a tracking "
                "server, the default artifact root is `./mlruns` of the folder the program runs "
                "in.",
            ),
            Option(
                "To `reports/mlruns/<experiment id>/...`: `./mlruns` of the folder the script runs "
                "in, recorded as the experiment's artifact location when the script created it.",
                "the default artifact root is `./mlruns` of the working folder, and a new "
                "experiment records it once: later runs of that experiment write there too, from "
                "any folder. To choose, use "
                "`mlflow.create_experiment(name, artifact_location=...)` or a tracking server.",
            ),
            Option(
                "Into `mlflow.db`, with the run's parameters and metrics.",
                "the backend store (the database) keeps metadata only: parameters, metrics, tags, "
                "times, status. Files go to the artifact store, a folder by default.",
            ),
            Option(
                "Nowhere: without a tracking server MLflow cannot store files.",
                "without a server the client writes artifacts itself, into the experiment's "
                "artifact location: a local folder unless you choose another.",
            ),
        ),
        question(
            "A program on MLflow 3.17 sets no tracking URI (no `set_tracking_uri`, no "
            "`MLFLOW_TRACKING_URI`) and runs in a folder without an old `mlruns/` file store. "
            "Where do its runs go?",
            "b",
            Option(
                "Into `./mlruns`, the file store, as older tutorials show.",
                "the file store was the default until MLflow 3.6. MLflow 3.7 made "
                "`sqlite:///mlflow.db` the default, and MLflow 3.13 and later refuse the file "
                "store unless `MLFLOW_ALLOW_FILE_STORE=true` is set.",
            ),
            Option(
                "Into `sqlite:///mlflow.db`, `mlflow.db` of the folder the program runs in.",
                "that is MLflow 3's default. The course still sets it, so that the code says "
                "where runs go and neither an environment variable nor an old `mlruns/` folder "
                "can send them elsewhere silently.",
            ),
            Option(
                "Nowhere: MLflow raises an error until a tracking URI is set.",
                "MLflow has a default store and uses it silently, which is why a program started "
                "in another folder logs into another database without any error.",
            ),
            Option(
                "Into one database per user, in the home folder, whatever folder it runs in.",
                "there is no per-user store: the default is relative to the folder the program "
                "runs in, so two folders give two stores.",
            ),
        ),
    ],
    "02": [
        question(
            "You deleted `sandbox-experiment` in the UI. Now "
            '`mlflow.set_experiment("sandbox-experiment")` raises *Cannot set a deleted '
            "experiment*. What are the ways out?",
            "c",
            Option(
                "Wait: MLflow erases deleted experiments by itself after a while.",
                "open-source MLflow erases nothing by itself. A deleted experiment stays in the "
                "`deleted` stage, its name taken, until you restore it or delete it for good.",
            ),
            Option(
                "Delete it again, this time from Python with `mlflow.delete_experiment`.",
                "the UI and `mlflow.delete_experiment` do the same thing: they move the "
                "experiment to the `deleted` stage, where its name stays taken.",
            ),
            Option(
                "Restore it (`MlflowClient().restore_experiment`), which brings its runs back, or "
                "delete it for good with `mlflow gc --tracking-uri sqlite:///mlflow.db "
                "--experiment-ids <its id>`, which frees the name and loses its runs.",
                "a deleted experiment keeps its name until it is restored or permanently "
                "deleted. Never leave out `--experiment-ids`: without it `mlflow gc` purges every "
                "deleted experiment; even with it, it purges every deleted run of the store.",
            ),
            Option(
                'Call `mlflow.create_experiment("sandbox-experiment")`: it makes a new experiment '
                "where `set_experiment` refuses.",
                "an experiment's name is unique in the store, deleted experiments included: "
                "`create_experiment` fails too, saying that the experiment already exists.",
            ),
        ),
        question(
            'You run the cell `mlflow.set_experiment("nyc-taxi-experiment")` a second time. '
            "What happens?",
            "c",
            Option(
                "MLflow creates a second experiment with the same name.",
                "names are unique in a store: `set_experiment` never makes a duplicate.",
            ),
            Option(
                "It raises an error: the experiment exists already.",
                "that is `mlflow.create_experiment`. `set_experiment` creates the experiment "
                "only if the name is new, and reuses it otherwise.",
            ),
            Option(
                "It returns the same experiment (same id) and makes it the active one.",
                "`set_experiment` creates or reuses, then makes the experiment active: the runs "
                "started afterwards in the session go there. The cell is safe to run again.",
            ),
            Option(
                "It empties the experiment, so that the notebook starts afresh.",
                "nothing is deleted: the experiment keeps every run it had, and the new runs "
                "join them.",
            ),
        ),
        question(
            "A notebook in `notebooks/` created `nyc-taxi-experiment`. Later a script started "
            "in another folder, `scripts/`, logs a model to that experiment, with the same "
            "database. Where do the model's files go?",
            "a",
            Option(
                "Under `notebooks/mlruns/<experiment id>/`: the experiment's artifact location, "
                "recorded when the notebook created it.",
                "an experiment's artifact location is fixed when the experiment is created "
                "(`./mlruns/<id>` of the creating program's folder, by default); every later run "
                "writes there, from any folder.",
            ),
            Option(
                "Under `scripts/mlruns/<experiment id>/`: each program writes to `./mlruns` of "
                "its own folder.",
                "the working folder matters only when an experiment is *created*. This one "
                "already has its artifact location, and the script's runs use it.",
            ),
            Option(
                "Inside `mlflow.db`, since both programs use that database.",
                "a database keeps metadata only; files go to the artifact store, whose place the "
                "experiment recorded when it was created.",
            ),
        ),
    ],
    "03": [
        question(
            "An exception escapes a `with mlflow.start_run():` block after a parameter was logged. "
            "What does the store then say about that run?",
            "a",
            Option(
                "Its status is `FAILED`, and the parameter logged before the error is kept.",
                "the `with` block ends the run as it leaves: `FINISHED` if the code ran to the "
                "end, `FAILED` if an exception escaped. What was logged stays, so a crashed "
                "experiment is never mistaken for a finished one.",
            ),
            Option(
                "It stays `RUNNING` until you end it by hand.",
                "the `with` block ends the run even when an exception escapes. A run stays "
                "`RUNNING` when the process dies inside it, as a kernel stopped mid-cell does "
                "(notebook 05 cleans such runs up).",
            ),
            Option(
                "MLflow deletes the run, so that no half-made run shows in the UI.",
                "MLflow deletes nothing by itself: the run stays, marked `FAILED`, with what it "
                "logged.",
            ),
            Option(
                "`FINISHED`, as for any `with` block that ends.",
                "MLflow tells the two endings apart: an exception that escapes the block makes "
                "the run `FAILED`.",
            ),
        ),
        question(
            "The fitted `DictVectorizer` must travel with the model. How does notebook 03 keep it "
            "in the run?",
            "b",
            Option(
                '`mlflow.log_param("dv", dv)`.',
                "a parameter is a short string: this would store the vectorizer's name and "
                "settings as text, not the fitted object, which nobody could load back.",
            ),
            Option(
                "Pickled into a file, logged with `mlflow.log_artifact`.",
                "an artifact is any file: the pickled vectorizer goes to the run's artifact "
                "store, where whoever uses the model can download it. (Notebook 07 goes further: "
                "a pipeline puts it inside the model itself.)",
            ),
            Option(
                "`mlflow.log_metric`, which records values as they change.",
                "a metric is a number that judges a result, such as the RMSE; a fitted object is "
                "neither.",
            ),
            Option(
                "Nothing to do: `mlflow.sklearn.log_model(model, ...)` saves it with the model.",
                "`log_model` saves the object you pass, here the `LinearRegression` alone. The "
                "vectorizer is a separate object, so it must be logged itself (or be part of a "
                "pipeline with the model).",
            ),
        ),
        question(
            'In MLflow 3, where is the model that `mlflow.sklearn.log_model(model, name="model")` '
            "logs inside a run?",
            "a",
            Option(
                "A *logged model* of its own, with an id `m-...`, linked to the run; its URI "
                "`models:/m-...` loads it anywhere.",
                "MLflow 3 makes a model a first-class object: the run lists it under *Logged "
                "models*, and `mlflow.get_logged_model` reads it back.",
            ),
            Option(
                "Among the run's artifacts, in a folder `model/`.",
                "that was MLflow 2. In MLflow 3, `client.list_artifacts(run_id)` does not list "
                "it: the model has its own id and its own place.",
            ),
            Option(
                "In the model registry, as the first version of a registered model called `model`.",
                "logging does not register: registering a model under a name, with versions, "
                "is a separate step (notebook 08).",
            ),
        ),
    ],
    "04": [
        question(
            "A run has ended. Its tag `review` should now say `done`, and its parameter `alpha` "
            "was logged with a wrong value. What can you change?",
            "b",
            Option(
                "Both: log each again with its new value.",
                "a logged parameter is fixed: logging another value for it raises *Changing "
                "param values is not allowed*. Log the right value in a new run.",
            ),
            Option(
                "The tag (set it again, for example with `MlflowClient().set_tag`), not the "
                "parameter.",
                "tags file and find runs, so they can change at any time, even after the run "
                "ended; parameters record what went into training and stay as logged.",
            ),
            Option(
                "Neither: a finished run is read-only.",
                "tags, and a run's description (the tag `mlflow.note.content`), can be set after "
                "the run has ended.",
            ),
            Option(
                "The parameter only: tags are set when the run starts.",
                "it is the other way round: a parameter is fixed once logged, and a tag can be "
                "set again whenever you like.",
            ),
        ),
        question(
            "Which of these tags does MLflow set by itself on every run?",
            "b",
            Option(
                "`developer`",
                "that is the course's own tag, set with `mlflow.set_tag`: MLflow does not know "
                "who the developer is unless you say it.",
            ),
            Option(
                "`mlflow.user`",
                "MLflow records who ran the run (your login name), with the other system tags "
                "such as `mlflow.runName` and `mlflow.source.type`.",
            ),
            Option(
                "`mlflow.source.git.commit`",
                "MLflow records it only for a script run inside a git repository. In a notebook "
                "it looks around `ipykernel_launcher.py`, inside the Python environment, so do "
                "not count on it: record what matters yourself.",
            ),
        ),
        question(
            "Which `filter_string` makes `mlflow.search_runs` return the runs tagged "
            "`developer` = `alice`?",
            "b",
            Option(
                "`\"developer = 'alice'\"`",
                "a bare name is read as a run attribute, such as `status` or `run_name`: MLflow "
                "raises *Invalid attribute key 'developer'*. Name the kind of key first.",
            ),
            Option(
                "`\"tags.developer = 'alice'\"`",
                "`tags.`, `params.`, `metrics.` and `attributes.` say what the key is; the syntax "
                "is SQL-like, with one `=` and the value in quotes.",
            ),
            Option(
                "`\"params.developer = 'alice'\"`",
                "`developer` is a tag, not a parameter: this filter raises no error and finds "
                "nothing.",
            ),
            Option(
                "`\"tags.developer == 'alice'\"`",
                "the syntax is SQL-like, not Python: `==` raises *Invalid comparator*. One `=`.",
            ),
        ),
    ],
    "05": [
        question(
            "You run ten trials with Optuna's default `TPESampler()`. What kind of search is that?",
            "b",
            Option(
                "A TPE search: each trial after the first is guided by the ones before.",
                "TPE needs some results before it can guide anything: its first "
                "`n_startup_trials` trials (ten by default) are drawn at random.",
            ),
            Option(
                "A random search: TPE draws its first `n_startup_trials` trials, ten by default, "
                "at random.",
                "so a search needs more trials than `n_startup_trials` (or a smaller "
                "`n_startup_trials`) before TPE guides any of them, as exercise 2 does.",
            ),
            Option(
                "A grid search over the values `suggest_float` allows.",
                "Optuna samples values; it does not walk a grid. (Optuna has a `GridSampler`, "
                "but you must ask for it.)",
            ),
        ),
        question(
            "Inside the parent run of a search, how does each trial's run become its child?",
            "a",
            Option(
                "`mlflow.start_run(nested=True)` opens it as a child: MLflow sets the system tag "
                "`mlflow.parentRunId` to the parent's id.",
                "that tag links them: the UI shows the trials under their parent, and "
                "`search_runs` with `tags.mlflow.parentRunId = '<id>'` finds exactly them.",
            ),
            Option(
                "Any run started inside a `with mlflow.start_run()` block becomes a child.",
                "without `nested=True`, `start_run` inside an active run raises an error (*Run "
                "... is already active*).",
            ),
            Option(
                "Its run name starts with the parent's name.",
                "names are free labels: the link is the system tag `mlflow.parentRunId`, which "
                "`nested=True` sets.",
            ),
        ),
        question(
            'Why find the best trial with `mlflow.search_runs(..., order_by=["metrics.rmse '
            'ASC"])` rather than copy its run id from the UI into the code?',
            "a",
            Option(
                "The code keeps working when the runs change: run the search again, or in "
                "another store, and it finds that search's best trial.",
                "a copied id names one run of one store: after a rerun it points at an old run, "
                "and in a colleague's store at nothing.",
            ),
            Option(
                "Run ids change each time the UI restarts.",
                "a run's id never changes: it is the run's permanent name. The trouble with a "
                "copied id is that it names an old run, or a run another store does not have.",
            ),
            Option(
                "`search_runs` is the only way to read a run from code.",
                "`mlflow.get_run(run_id)` reads one run by its id. The search is there to find "
                "*which* run, without knowing its id.",
            ),
        ),
    ],
    "06": [
        question(
            "In a fresh kernel you call `model.fit(X, y)`, then `mlflow.sklearn.autolog()`. "
            "What does autologging record about that fit?",
            "b",
            Option(
                "Everything: `autolog()` picks up the last model fitted.",
                "`autolog()` changes `fit` for the calls that come after it; it cannot see a fit "
                "that has already happened.",
            ),
            Option(
                "Nothing: turn autologging on first, then fit.",
                "`autolog()` patches scikit-learn's `fit` from then on. A fit made before it is "
                "not recorded: fit again, after `autolog()`.",
            ),
            Option(
                "The parameters only; the metrics need a new fit.",
                "autologging records a fit as it happens, parameters and metrics together; for a "
                "fit made before it was turned on, it records nothing at all.",
            ),
            Option(
                "It records it at the next `mlflow.start_run()`.",
                "a run records what happens while it is open; the earlier fit is not kept "
                "anywhere for a later run to pick up.",
            ),
        ),
        question(
            "The setup cell ran `from sklearn.metrics import root_mean_squared_error` *before* "
            "`mlflow.sklearn.autolog()`. With `y_pred = model.predict(X_val)`, which call logs "
            "the metric `root_mean_squared_error_X_val` by itself?",
            "b",
            Option(
                "`root_mean_squared_error(y_val, y_pred)`",
                "this name was bound to the original function before `autolog()` replaced the "
                "one in `sklearn.metrics`: calls through it log nothing. The order of two lines "
                "decides.",
            ),
            Option(
                "`sklearn.metrics.root_mean_squared_error(y_val, y_pred)`",
                "looked up in the module now, it is autologging's wrapper, and `y_pred` is the "
                "very object `predict` returned: the metric is logged to the model's run, named "
                "after the variable given to `predict`, `X_val`.",
            ),
            Option(
                '`mlflow.log_metric("rmse", root_mean_squared_error(y_val, y_pred))`',
                "this logs your own metric, named `rmse`, by hand: the course's way for a metric "
                "compared across runs. Autologging adds nothing for this call.",
            ),
        ),
        question(
            "Autologging is on, and you call `fit` outside any `with mlflow.start_run()` block. "
            "What happens?",
            "b",
            Option(
                "Nothing is logged: autologging needs an open run.",
                "autologging does not wait for you to open a run.",
            ),
            Option(
                "MLflow starts a run for that fit, records it, and ends it.",
                "handy in a hurry, surprising when unexpected: `mlflow.last_active_run()` finds "
                "that run. Open a run yourself to choose where a fit is recorded.",
            ),
            Option(
                "It raises an error, since there is no active run.",
                "autologging never makes `fit` fail for want of a run: it opens one.",
            ),
            Option(
                "It is logged into the most recent run, which has ended.",
                "an ended run stays as it was: autologging starts a new run for the fit.",
            ),
        ),
    ],
    "07": [
        question(
            "A service sends a trip without its `trip_distance` to a model loaded from its URI. "
            "Which loader gives a model that refuses it with a clear error?",
            "a",
            Option(
                "`mlflow.pyfunc.load_model`",
                "the generic model checks every input against the signature stored with the "
                "model, and says *Model is missing inputs ['trip_distance']*.",
            ),
            Option(
                "`mlflow.sklearn.load_model`",
                "this gives the scikit-learn object itself, which knows nothing of MLflow's "
                "signature and checks no input.",
            ),
            Option(
                "Both: the signature travels with the model.",
                "the signature is stored in `MLmodel`, but only the generic `pyfunc` model "
                "enforces it; the native scikit-learn object ignores it.",
            ),
            Option(
                "Neither: a signature only documents the model.",
                "`pyfunc` enforces it: the notebook shows a missing column and a distance sent "
                "as text both refused.",
            ),
        ),
        question(
            "Why does this notebook log one `Pipeline` (encoder and `Ridge`) rather than the "
            "model plus a pickled `DictVectorizer`, as notebook 03 did?",
            "a",
            Option(
                "Whoever loads the model gets the preprocessing in the same object: trips in, "
                "minutes out, with nothing to find, load or apply first.",
                "a separate preprocessor is a chance of error (forgotten, another version, "
                "applied differently). A pipeline *is* the preprocessing plus the model.",
            ),
            Option(
                "A pipeline trains a better model.",
                "same model, same RMSE as notebook 04's `Ridge`: the pipeline changes how the "
                "model travels, not what it learns.",
            ),
            Option(
                "`log_model` refuses a model that does not include its preprocessing.",
                "`log_model` saves any model you give it; keeping the preprocessing with it is "
                "your choice, and a good one.",
            ),
        ),
        question(
            "Which file of a logged model lists the packages to install to use it?",
            "a",
            Option(
                "`requirements.txt`",
                "it lists the packages (here the one given in `pip_requirements`, and `mlflow`, "
                "which MLflow adds); `python_env.yaml` names the Python version and points at it.",
            ),
            Option(
                "`MLmodel`",
                "`MLmodel` describes how to load the model (its flavors), its signature, and the "
                "run and logged model it belongs to; the packages are in `requirements.txt`.",
            ),
            Option(
                "`model.skops`",
                "that is the fitted pipeline itself, in the skops format.",
            ),
            Option(
                "None: a model runs with whatever the loading environment has.",
                "it may not run there at all: that is why MLflow stores the requirements, and "
                "why `mlflow models serve` can build an environment from them.",
            ),
        ),
    ],
    "08": [
        question(
            "An older tutorial marks a version as production: it moves the version to the stage "
            '`"Production"` with `MlflowClient.transition_model_version_stage`. What does this '
            "course do on MLflow 3?",
            "b",
            Option(
                "The same: stages are how MLflow 3 marks the version that serves.",
                "stages were deprecated in MLflow 2.9; they still work in MLflow 3, with a "
                "warning, but new code uses aliases.",
            ),
            Option(
                "It points the alias `champion` at the version "
                "(`set_registered_model_alias`), and code loads "
                "`models:/nyc-taxi-duration@champion`.",
                "an alias is a movable name for one version: to deploy another version you move "
                "the alias, and nothing that loads `@champion` changes.",
            ),
            Option(
                "It registers the version again under a second name, such as "
                "`nyc-taxi-duration-production`.",
                "one registered model holds all the versions; an alias says which one serves. "
                "(The UI's *Promote model* button copies a version to another registered model, "
                "which is for moving models between registries.)",
            ),
            Option(
                "It tags the version `stage` = `Production`, and code loads "
                "`models:/nyc-taxi-duration@Production`.",
                "`@` names an alias, not a tag: with only a tag, that URI finds nothing. Tags "
                "record facts about a version (what validated it); aliases point.",
            ),
        ),
        question(
            "`champion` points at an older version. You call "
            '`client.set_registered_model_alias(NAME, "champion", newer_version)`. What then?',
            "a",
            Option(
                "`champion` points at the newer version only; the older one keeps its other "
                "aliases, its run and its model.",
                "an alias points at one version at a time, so setting it moves it. (A version "
                "may carry several aliases.) Code that loads `@champion` gets the newer version "
                "the next time it loads.",
            ),
            Option(
                "Both versions carry `champion`.",
                "an alias points at exactly one version: setting it on another version takes it "
                "off the first.",
            ),
            Option(
                "It raises an error: remove the alias from the older version first.",
                "no need: setting an alias that exists moves it.",
            ),
            Option(
                "The older version is deleted from the registry.",
                "versions stay until you delete them: rolling back is moving the alias back "
                "(exercise 1).",
            ),
        ),
        question(
            "Your code needs the model that serves. What should it load?",
            "b",
            Option(
                "The version number you saw in the UI, such as `models:/nyc-taxi-duration/3`.",
                "version numbers are never reused and differ from one store to another: rerun "
                "the notebook and its models become new versions. A number in code goes stale.",
            ),
            Option(
                "`models:/nyc-taxi-duration@champion`",
                "the alias says which version serves, and the registry resolves it when the "
                "model is loaded: moving the alias needs no change in the code.",
            ),
            Option(
                "The newest version, since the newest model is the best.",
                "newer is not better: a version serves once it has been judged, as this notebook "
                "judges the challenger on March before moving `champion`.",
            ),
        ),
        question(
            "Why does the notebook compare champion and challenger on March's trips, not "
            "February's?",
            "b",
            Option(
                "March has more trips, so its RMSE is more precise.",
                "size is not the point: February's result is no longer a fair judge, whatever "
                "its size.",
            ),
            Option(
                "Both models were chosen on February (their features and `alpha`), so "
                "February flatters them; March is new to both, as production data would be.",
                "data that served to choose a model cannot judge it fairly any more: judge on "
                "data neither model has seen.",
            ),
            Option(
                "The registry only accepts metrics computed on data newer than the training data.",
                "the registry checks nothing about your data: choosing a fair test is your job.",
            ),
        ),
    ],
    "09": [
        question(
            "A teammate starts `mlflow server --host 0.0.0.0 --port 5000` on a laptop on the "
            "office network, with no authentication in front. Who can use it?",
            "b",
            Option(
                "Only that laptop: MLflow 3's host check (`--allowed-hosts`) refuses everyone "
                "else.",
                "the host check reads the `Host` header, which the client writes: any program "
                "can send `Host: localhost`, and the defaults accept the private addresses "
                "(`192.168.*`, `10.*`, ...) as well. It stops a browser tricked by DNS "
                "rebinding; it is not authentication.",
            ),
            Option(
                "Anyone who can reach the laptop over the network: they can read, change or "
                "delete runs, or plant a model.",
                "`0.0.0.0` means listen on every network interface, and `mlflow server` asks "
                "for no login by default. Keep `127.0.0.1` (the default), or put authentication "
                "in front and list the public name in `--allowed-hosts`.",
            ),
            Option(
                "Only people who know the password the server printed when it started.",
                "`mlflow server` asks for no password and prints none. The experimental "
                "`--app-name basic-auth` adds users (after `pip install mlflow[auth]`), but you "
                "must start it that way.",
            ),
            Option(
                "Nobody: `0.0.0.0` is not a real address, so the server listens nowhere.",
                "as a listening address `0.0.0.0` means all IPv4 interfaces of the machine: the "
                "widest exposure, not none.",
            ),
        ),
        question(
            "A server started with `--artifacts-destination ./server-artifacts` (proxied "
            "artifacts). A client logs a file. Where does the file go?",
            "a",
            Option(
                "The client uploads it to the server over HTTP (`mlflow-artifacts:` URIs), and "
                "the server stores it under `server-artifacts/`, in its own folder.",
                "with proxied artifacts the client needs no access to the storage: only the "
                "server writes there.",
            ),
            Option(
                "Into `server-artifacts/` of the client's own working folder, written by the "
                "client.",
                "that is direct access, where the client writes to the artifact location "
                "itself. Here the server does, in the folder it was started from.",
            ),
            Option(
                "Into `./mlruns` of the client's folder, as in notebooks 01-08.",
                "that is the default of a `sqlite:///` store without a server. With an "
                "`http://` tracking URI the server decides where artifacts go.",
            ),
            Option(
                "Into the server's database, `server.db`.",
                "a backend store keeps metadata; `--artifacts-destination` is where the server "
                "keeps files.",
            ),
        ),
        question(
            "After logging to the server, you open the UI of the earlier notebooks "
            "(`mlflow ui --backend-store-uri sqlite:///mlflow.db`, from `notebooks/`). The "
            "experiment `server-demo` is not there. Why?",
            "a",
            Option(
                "Its runs are in the server's store, `server.db`; that UI reads `mlflow.db`.",
                "the UI shows one store, the one its URI names. The server is its own UI, at its "
                "address, while it runs; started again on the same stores, it shows the same "
                "runs.",
            ),
            Option(
                "Stopping the server deleted them.",
                "stopping a server deletes nothing: `server.db` and `server-artifacts/` stay, "
                "and exercise 1 finds the runs again through a restarted server.",
            ),
            Option(
                "The UI shows new experiments only after it restarts.",
                "the UI reads its store on every page. It is another store that holds "
                "`server-demo`.",
            ),
        ),
        question(
            "A team moves its runs to a tracking server backed by PostgreSQL. What changes in a "
            "data scientist's training code?",
            "c",
            Option(
                "It needs the PostgreSQL driver and the database's password.",
                "only the server talks to the database; clients talk HTTP to the server, with no "
                "database driver and no database password.",
            ),
            Option(
                "Every `log_*` call changes, to send HTTP requests.",
                "the same `mlflow.log_*` calls work against any store: the client turns them "
                "into HTTP requests when the URI is `http://`.",
            ),
            Option(
                "Only the tracking URI: the server's address, best set in `MLFLOW_TRACKING_URI` "
                "rather than in the code.",
                "the client code is the same in all three scenarios; one string says where runs "
                "go.",
            ),
        ),
    ],
    "10": [
        question(
            "Which server lets laptops that hold no S3 keys log models into the bucket?",
            "a",
            Option(
                "`mlflow server ... --artifacts-destination s3://mlflow/proxied`, with the keys "
                "in the server's environment.",
                "proxied artifacts: clients upload to the server (`mlflow-artifacts:` URIs), and "
                "the server writes to the bucket with its own keys.",
            ),
            Option(
                "`mlflow server ... --default-artifact-root s3://mlflow/direct "
                "--no-serve-artifacts`.",
                "direct access: the server only records where artifacts go (`s3://...`), and "
                "each client writes there itself. A client without keys fails with "
                "`NoCredentialsError`, as the notebook shows.",
            ),
            Option(
                "Either one: both flags name the bucket, and the server does the rest.",
                "they differ in who writes to the bucket: with `--artifacts-destination` the "
                "server, with `--default-artifact-root s3://...` every client.",
            ),
            Option(
                "Neither: any program that stores files in S3 needs S3 keys.",
                "with proxied artifacts the laptops do not talk to S3 at all, only HTTP to the "
                "server, which holds the keys.",
            ),
        ),
        question(
            "A team's server ran with `--default-artifact-root s3://mlflow/direct`; it now runs "
            "with `--artifacts-destination s3://mlflow/proxied` instead. A new run of an "
            "experiment created *before* the change logs a model. Where does the model go?",
            "a",
            Option(
                "Under `s3://mlflow/direct/`, written by the client itself (which needs keys).",
                "an experiment's artifact location is fixed when the experiment is created; the "
                "server's flags decide only where *new* experiments put their artifacts.",
            ),
            Option(
                "Under `s3://mlflow/proxied/`, through the server.",
                "only experiments created after the change get a proxied (`mlflow-artifacts:`) "
                "location. The old experiment keeps its `s3://mlflow/direct/...` one.",
            ),
            Option(
                "The server moves the old experiment's artifacts to the new place at start.",
                "the server moves nothing: each experiment keeps the artifact location it was "
                "created with.",
            ),
        ),
        question(
            "A CI job needs direct access to the bucket. Where should its S3 keys come from?",
            "c",
            Option(
                "From the training code, as strings passed to `boto3`.",
                "keys in code end up in git, in notebooks' outputs and in logs. Code should not "
                "hold secrets.",
            ),
            Option(
                "From the tracking URI, such as `https://key:secret@mlflow.your-team.org`.",
                "a URI is printed and logged, and the tracking server is not the bucket: S3 "
                "keys do not belong there.",
            ),
            Option(
                "From the job's environment, set by a secret manager, or from a cloud role.",
                "boto3 reads `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and MLflow "
                "`MLFLOW_S3_ENDPOINT_URL`) from the environment, or gets keys from the "
                "machine's role: none is ever written in code.",
            ),
        ),
    ],
    "11": [
        question(
            "`mlflow models serve -m models:/nyc-taxi-duration@champion` is running. You move "
            "`champion` to a better version. Which model answers the next request?",
            "b",
            Option(
                "The new champion, at once.",
                "the server resolved the alias once, when it started, and loaded that version.",
            ),
            Option(
                "The version that was champion when the server started, until it is restarted.",
                "the alias is resolved at start: restart the server to serve the new champion.",
            ),
            Option(
                "None: the server answers with an error, since its alias has moved.",
                "the server keeps serving the model it loaded; it does not watch the registry.",
            ),
        ),
        question(
            "A request to `/invocations` lacks the column `trip_distance`. What does the client "
            "get?",
            "a",
            Option(
                "Status `400` and a message that names the missing column.",
                "the model was logged with a signature, and the server checks every request "
                "against it before the model sees it.",
            ),
            Option(
                "Predictions computed with a distance of zero.",
                "the server fills in nothing: a request that does not match the signature is "
                "refused.",
            ),
            Option(
                "Status `200` with empty predictions.",
                "an incomplete request is an error, and the server says so with a `400`.",
            ),
        ),
        question(
            "`.venv/bin/mlflow models serve ...`, run without activating the environment, dies "
            "with `uvicorn: not found`. Why?",
            "a",
            Option(
                "MLflow starts the web server by running the command `uvicorn` through the "
                "shell, which looks for it on PATH, where the environment's `bin` is missing.",
                "activate the environment first (or put its `bin` first on PATH): uvicorn is "
                "installed, the shell just cannot find it.",
            ),
            Option(
                "uvicorn is not installed with MLflow.",
                "it is installed, in the environment's `bin` folder, next to `mlflow`; the shell "
                "does not look there unless the environment is active.",
            ),
            Option(
                "Another program holds the port.",
                "a taken port gives another error, about the address in use; *not found* is "
                "about a command.",
            ),
        ),
        question(
            'A teammate says: "MLflow versions our data: every run records its dataset." Is '
            "that right?",
            "b",
            Option(
                "Yes: `mlflow.log_input` stores a copy of the data with the run.",
                "`log_input` records a dataset's name, source, digest and schema, not the data.",
            ),
            Option(
                "No: a run records the dataset's name, digest and schema, not the data itself; "
                "if the file behind a path changes, the run still points at the path.",
                "the digest tells you *whether* two runs saw the same data, not *what* it was. "
                "Tools such as DVC or lakeFS version the data itself.",
            ),
            Option(
                "Yes, once the model is registered.",
                "the registry versions models, not data: a model version points at a logged "
                "model, never at a copy of its training data.",
            ),
        ),
    ],
    "12": [
        question(
            "Four workers on four machines share one Optuna study. Which storage lets them?",
            "c",
            Option(
                "`JournalStorage` on a file on each machine's own disk.",
                "each machine would write its own file: four studies that know nothing of each "
                "other. A journal is shared only where every worker writes the same file (one "
                "machine, or a shared disk).",
            ),
            Option(
                "`RDBStorage` on `sqlite:///optuna.db`.",
                "a SQLite database is a file on one machine: the others cannot open it, and "
                "Optuna advises against SQLite for many parallel writers anyway.",
            ),
            Option(
                "`RDBStorage` on a PostgreSQL database that every machine reaches.",
                "every worker asks the same database for its next trial, so no trial runs "
                "twice; give Optuna a database of its own, not MLflow's.",
            ),
            Option(
                "Each worker's own `optuna.create_study()` in memory, with the same seed.",
                "four studies in four memories: each runs the same trials as the others, the "
                "seed makes them identical, not shared.",
            ),
        ),
        question(
            "A worker is killed with `kill -9` in the middle of a trial, on a database storage "
            "with a heartbeat. What happens to that trial?",
            "b",
            Option(
                "It stays RUNNING forever.",
                "that is what a journal storage does in Optuna 5.0, which has no heartbeat; "
                "with a database storage the other workers notice the silence.",
            ),
            Option(
                "Once it has been silent for the grace period, the next worker that asks for a "
                "trial fails it, and Optuna calls the heartbeat-stale callback.",
                "the course's callback then ends the trial's MLflow run KILLED; the other "
                "workers carry on.",
            ),
            Option(
                "Optuna runs it again at once on another worker.",
                "only a `RetryHeartbeatStaleTrialCallback` asks for a retry, and even then "
                "only after the trial has been failed.",
            ),
            Option(
                "The whole search stops with an error.",
                "the other workers never depended on the killed one: each asks the storage for "
                "its own next trial.",
            ),
        ),
        question(
            "You run the same seeded search twice on two workers. Which is true?",
            "c",
            Option(
                "Both runs give the same trials, as notebook 05's seeded search did.",
                "which worker asks next depends on the timing of two processes, and each answer "
                "changes what TPE proposes after it.",
            ),
            Option(
                "The trials differ, so the results cannot be trusted.",
                "each trial's result is exact for its parameters, which its run records; only "
                "the sequence of trials tried differs.",
            ),
            Option(
                "The trials may differ from run to run, but each trial's RMSE can be "
                "reproduced from the parameters its run logged.",
                "that is what a parallel search keeps: the count, the records, and every "
                "result from its own run.",
            ),
            Option(
                "Setting `constant_liar=False` makes the two runs identical.",
                "`constant_liar` only keeps workers from proposing a point another worker is "
                "still computing; the timing still decides the order.",
            ),
        ),
    ],
}
"""The questions of each lesson notebook, by its number; the first option is ``a``."""


def _questions(notebook: str | int) -> list[Question] | None:
    key = f"{notebook:02d}" if isinstance(notebook, int) else str(notebook)
    return QUIZZES.get(key)


def _letters(q: Question) -> str:
    """The option letters as a learner reads them: "a, b, c or d"."""
    letters = list(q.options)
    return f"{', '.join(letters[:-1])} or {letters[-1]}"


def _instructions(count: int) -> str:
    names = [f"q{i}=" for i in range(1, count + 1)]
    listed = f"{', '.join(names[:-1])} and {names[-1]}"
    return (
        f"No answer yet: after {listed}, put the letter of the option you choose, in quotes, "
        "then run this cell again. Each answer gets Correct or Not yet, and why."
    )


def verdicts(notebook: str | int, **answers: object) -> list[str]:
    """The lines ``quiz`` prints: one per question once any is answered, else how to answer.

    Never raises for a learner's slip (a letter that is no option, a number, an unknown
    ``qN``): the line says what to write instead, as the exercise checkers do.
    """
    questions = _questions(notebook)
    if questions is None:
        return [
            f"There is no quiz for notebook {notebook!r}: the quizzes are those of notebooks "
            f'"01" to "12", such as quiz("01", q1=...).'
        ]
    names = [f"q{i}" for i in range(1, len(questions) + 1)]
    lines = [
        f"{key}: this quiz has no such question; its questions are {names[0]} to {names[-1]}."
        for key in answers
        if key not in names
    ]
    if all(answers.get(name) is None for name in names):
        return [*lines, _instructions(len(questions))]
    for name, q in zip(names, questions, strict=True):
        given = answers.get(name)
        letter = given.strip().lower() if isinstance(given, str) else None
        if given is None:
            lines.append(f"{name}: no answer yet ({_letters(q)}).")
        elif letter not in q.options:
            lines.append(
                f"{name}: {given!r} is not one of the options: write one letter, "
                f'{_letters(q)}, in quotes ({name}="...").'
            )
        else:
            verdict = "Correct" if letter == q.answer else "Not yet"
            lines.append(f"{name} ({letter}) {verdict}: {q.options[letter].why}")
    return lines


def quiz(notebook: str | int, **answers: object) -> None:
    """Print, for each answered question, ``Correct: <why>`` or ``Not yet: <why not>``.

    ``notebook`` is the notebook's number ("01"); each answer is ``qN="<letter>"``. Returns
    None, so that a cell shows the printed lines only.
    """
    print("\n".join(verdicts(notebook, **answers)))


QUESTIONS_CELL_ID = "quiz-questions"
ANSWER_CELL_ID = "quiz-answers"
TAG = "quiz"
"""The tag of the quiz cells, by which tools/insert_quizzes.py and the site find them."""

HEADING = "## Check your understanding"


def _markdown_questions(questions: list[Question], option: str) -> list[str]:
    parts = []
    for number, q in enumerate(questions, start=1):
        parts.append(f"**q{number}.** {q.text}")
        parts.append("\n".join(option.format(letter=k, text=o.text) for k, o in q.options.items()))
    return parts


def notebook_cells(notebook: str) -> list[dict]:
    """The quiz's two cells for the notebook: the questions (markdown) and the answer cell.

    Nothing in them says which option is right: the explanations come only from running
    the answer cell with an answer.
    """
    questions = QUIZZES[notebook]
    count = len(questions)
    intro = (
        f"{HEADING}\n\n"
        "A few questions on this notebook's ideas, and on the mistakes most often made with "
        "them. Choose one option per question, write its letter in the cell below "
        '(`q1="..."`, in quotes) and run it: each answer gets *Correct* or *Not yet*, with why '
        "that option is right, or what it misses. Try again as often as you like."
    )
    markdown = "\n\n".join([intro, *_markdown_questions(questions, "- **{letter}.** {text}")])
    names = ", ".join(f"q{i}=None" for i in range(1, count + 1))
    code = (
        "from helpers.quizzes import quiz\n\n"
        "# Your answers: one letter each, in quotes; then run this cell.\n"
        f'quiz("{notebook}", {names})'
    )
    tags = {"tags": [TAG]}
    return [
        {"cell_type": "markdown", "id": QUESTIONS_CELL_ID, "metadata": tags, "source": markdown},
        {
            "cell_type": "code",
            "execution_count": None,
            "id": ANSWER_CELL_ID,
            "metadata": tags,
            "outputs": [],
            "source": code,
        },
    ]


def _inline_html(markdown: str) -> str:
    """One line of markdown (code spans, emphasis) as HTML, for a ``<summary>``, where the
    site's markdown parser leaves text as it is."""
    from markdown_it import MarkdownIt  # installed with the site's tools; not in a kernel

    return MarkdownIt("commonmark").renderInline(markdown)


def site_markdown(notebook: str) -> str:
    """The quiz as the website shows it, where nothing runs: each question, then each option
    folded in a ``<details>`` whose summary is the option and whose body is its verdict and
    why. Closed until the reader clicks an option."""
    questions = QUIZZES[notebook]
    intro = (
        f"{HEADING}\n\n"
        "*This page runs nothing: under each question, click an option to see whether it is "
        "right, and why. In JupyterLab, the notebook's quiz cell checks your answers.*"
    )
    parts = [intro]
    for number, q in enumerate(questions, start=1):
        parts.append(f"**q{number}.** {q.text}")
        for letter, option in q.options.items():
            verdict = "Correct" if letter == q.answer else "Not yet"
            summary = f"{letter}. {_inline_html(option.text)}"
            parts.append(
                f"<details><summary>{summary}</summary>\n\n{verdict}: {option.why}\n\n</details>"
            )
    return "\n\n".join(parts)
