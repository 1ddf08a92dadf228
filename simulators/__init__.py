"""Simulators of every counterpart of the hub: banks, provincial CRMs and BOSS systems.

They are outside parties: they speak only through `contracts/` and the broker (plain aio-pika,
no hub code but the segment table and `hub.liveness`, which has no hub dependency: the watch of
`signhub simulate`), so they also show that any AMQP client can integrate.
`runner.start_simulators` starts them all; `seed.build_world` makes their data.
"""
