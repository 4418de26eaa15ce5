# Load the scenario collector for every pytest run from this repository
# (see pytest.ini for why this is not "addopts = -p ...").
pytest_plugins = ["tests.drivers.mtasim_pytest"]
