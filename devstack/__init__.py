"""The one harness that runs the whole system on one machine, for the tests, the benchmarks and `dev.py up`.

processes.py  each process's command line, and `Stack`, which starts and stops them one by one
system.py     `System` (the whole system on loopback, read from both sides), `connect_shop` (the one way a
              shop is connected: the install's scopes and set-up), `ConnectedShop`
wait.py       `wait_for`, the one wait helper
run.py        one process with the development settings (Procfile.dev; `dev.py flask`)
up.py         `dev.py up`: the processes under honcho, and demo.py beside them
test.py       `dev.py test`: pytest with an embedded Redis
merchant.py   the merchant's side of the sandbox store
"""
