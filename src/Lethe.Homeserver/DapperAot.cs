[module: Dapper.DapperAot]
[module: Dapper.BindTupleByName(false)]
