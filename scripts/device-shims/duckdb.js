// The GPU machine runs kernels and benchmarks only; the data pipeline's DuckDB is not carried there.
export const DuckDBInstance = {
  create() {
    throw new Error('DuckDB is not available in the device bundle (data commands run on the host)');
  },
};
export default { DuckDBInstance };
