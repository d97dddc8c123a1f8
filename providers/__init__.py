"""Model providers: one interface (`base.Provider`), one file per provider family."""
